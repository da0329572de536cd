"""No memory growth: 1,000 load / run / close cycles and 10,000 logits
calls leave the resident set size (RSS, /proc/self/statm) within a stated
bound after a warm-up. A leaked model (packed weights, context, KV cache)
or a leaked logits array per call would exceed the bounds many times over:
measured, 200 kept stories260K models grow RSS by ~680 MiB and 1,000 kept
4-token logits arrays by ~8 MiB."""
import gc
import os

import pytest

import headroom

from conftest import ASAN, MODEL, require

pytestmark = pytest.mark.skipif(ASAN, reason="ASan's quarantine and shadow memory make RSS meaningless")

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def growth(cycle, warm, n):
    """RSS growth in bytes over n calls of cycle() after warm calls (garbage collected before and after)."""
    for _ in range(warm):  # warm-up: allocator pools, import caches
        cycle()
    gc.collect()
    before = rss()
    for _ in range(n):
        cycle()
    gc.collect()
    return rss() - before


def test_a_thousand_load_and_free_cycles_do_not_grow_memory():
    require(MODEL)

    def cycle():
        m = headroom.Model.load(MODEL, threads=1)
        m.logits([1, 403, 407, 261])
        m.close()

    grown = growth(cycle, 100, 1000)
    print(f"1000 load/logits/close cycles: RSS grew {grown / 2**20:.2f} MiB (bound 8 MiB)")
    assert grown < 8 * 2**20


def test_ten_thousand_logits_calls_do_not_grow_memory(model, ids):
    grown = growth(lambda: model.logits(ids), 500, 10000)
    print(f"10000 logits calls: RSS grew {grown / 2**20:.2f} MiB (bound 4 MiB)")
    assert grown < 4 * 2**20


def test_objects_dropped_without_close_are_freed_by_the_garbage_collector():
    require(MODEL)
    for _ in range(50):
        m = headroom.Model.load(MODEL, threads=1)
        m.logits([1, 403])
        del m
    gc.collect()
    before = rss()
    for _ in range(500):
        m = headroom.Model.load(MODEL, threads=1)
        v = m.with_kv_plan(headroom.KvPlan.full(m))
        v.logits([1, 403])
        del m, v
    gc.collect()
    grown = rss() - before
    print(f"500 models and views dropped without close: RSS grew {grown / 2**20:.2f} MiB (bound 8 MiB)")
    assert grown < 8 * 2**20


def test_gradients_and_patch_runs_dropped_without_close_do_not_grow_memory(model, ids):
    """hr_grad (activations + gradient buffers: hr_grad_bytes 1.2 MiB a call
    here, so 300 leaked ones would grow RSS by ~350 MiB) and hr_patch_result
    are freed when dropped, also with a weight gradient's zero-copy array
    outliving its Gradients for a while."""
    pairs = [(ids[:12], ids[12:24], int(ids[30]), int(ids[31]))]

    def cycle():
        g = model.grad(ids, wrt=["head_gates", "blk.0.attn_q.weight"])
        a = g["blk.0.attn_q.weight"]
        del g
        a.sum()
        headroom.patch(model, pairs, what="heads", lens=False)

    grown = growth(cycle, 50, 300)
    print(f"300 grad + patch calls dropped without close: RSS grew {grown / 2**20:.2f} MiB (bound 8 MiB)")
    assert grown < 8 * 2**20

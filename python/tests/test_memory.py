"""No memory growth: 1,000 load / run / close cycles and 10,000 logits
calls leave the resident set size (RSS, /proc/self/statm) within a stated
bound after a warm-up. A leaked model (packed weights, context, KV cache)
or a leaked logits array per call would exceed the bounds many times over:
measured, 200 kept stories260K models grow RSS by ~680 MiB and 1,000 kept
4-token logits arrays by ~8 MiB."""
import gc
import os
import subprocess
import sys

import numpy as np

import pytest

import headroom

from conftest import ASAN, CLI, MODEL, REPO, TOOLS, require

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


def file_pages_mapped(path):
    """Bytes of each page of `path` mapped into this process, as a set of
    file offsets (/proc/self/maps for the mapping, /proc/self/pagemap's
    present bit, bit 63, for each page)."""
    real = os.path.realpath(path)
    offsets = set()
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as pm:
        for line in maps:
            f = line.split()
            if len(f) < 6 or os.path.realpath(f[5]) != real:
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            pm.seek(lo // PAGE * 8)
            entries = pm.read((hi - lo) // PAGE * 8)
            base = int(f[2], 16)
            for i in range(len(entries) // 8):
                if int.from_bytes(entries[8 * i:8 * i + 8], "little") >> 63:
                    offsets.add(base + i * PAGE)
    return offsets


def test_a_forward_pass_maps_back_none_of_the_weight_pages_packing_gave_back(tmp_path):
    """A bf16 GGUF of ~18 MB (6 layers of ~1.7 MB after an 8 MB embedding):
    after the first context packs the matrices (their mapped pages given
    back) and a forward over 8 tokens, the pages of the file mapped into
    the process lie in the header and the embedding (rows looked up), not
    in the layers. Reading a norm vector in place used to map its whole
    page-cache folio (MBs of the layer's weights) back: on the SmolLM-135M
    shape 110 of 270 MB. Bound: 1 MiB of the layers' bytes (the file is
    written in one piece: in large page-cache folios, as a downloaded file
    is; 8.2 MiB of the layers were mapped before the fix)."""
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import q8_0_ref
    require(TOOLS / "hr_make_random", CLI)
    binp, gguf = tmp_path / "m.bin", tmp_path / "m.gguf"
    subprocess.run([str(TOOLS / "hr_make_random"), "--dim", "256", "--hidden", "768", "--layers", "6", "--heads", "4",
                    "--kv-heads", "4", "--vocab", "16000", "--seq", "64", str(binp)], check=True)
    subprocess.run([str(CLI), "convert", str(binp), str(gguf), "--to", "gguf", "--dtype", "bf16", "--no-tokenizer",
                    "-q"], check=True)
    # copied in one write, as a downloaded file is written: the page cache
    # then holds it in large folios (the writer's row-sized writes make small ones)
    data = gguf.read_bytes()
    gguf = tmp_path / "copy.gguf"
    gguf.write_bytes(data)
    r = q8_0_ref.Reader(str(gguf))
    layers = [(r.data + off, r.data + off + int(np.prod(ne)) * 2) for name, (ne, ty, off) in r.tensors.items()
              if name.startswith("blk.") and len(ne) == 2]
    lo, hi = min(a for a, _ in layers), max(b for _, b in layers)
    m = headroom.Model.load(gguf, threads=1)
    m.logits([1, 2, 3, 4, 5, 6, 7, 8])
    mapped = file_pages_mapped(gguf)
    in_layers = sum(PAGE for o in mapped if lo <= o < hi)
    print(f"file pages mapped after a forward: {len(mapped) * PAGE / 2**20:.2f} MiB, of which in the layers' "
          f"{(hi - lo) / 2**20:.1f} MiB: {in_layers / 2**20:.2f} MiB (bound 1 MiB)")
    m.close()
    assert in_layers <= 2**20


def test_a_pruned_model_holds_its_matrices_once_after_its_first_forward(tmp_path):
    """headroom.prune on a bf16 GGUF (8 layers of ~2.1 MB) returns a model
    built in memory. Its first forward used to pack a second copy of every
    matrix beside the rows the prune had cut (+15 MiB here, +13 GB on a
    pruned 8B model); now the model holds its matrices only as the panels
    the forward reads in place. Measured: the RSS growth over the first
    logits call (context, KV cache, activations). Bound: 4 MiB, a quarter
    of the pruned matrices' 15 MiB."""
    require(TOOLS / "hr_make_random", CLI)
    binp, gguf = tmp_path / "m.bin", tmp_path / "m.gguf"
    subprocess.run([str(TOOLS / "hr_make_random"), "--dim", "256", "--hidden", "1024", "--layers", "8", "--heads",
                    "4", "--kv-heads", "4", "--vocab", "4000", "--seq", "64", str(binp)], check=True)
    subprocess.run([str(CLI), "convert", str(binp), str(gguf), "--to", "gguf", "--dtype", "bf16", "--no-tokenizer",
                    "-q"], check=True)
    m = headroom.Model.load(gguf, threads=1)
    p = headroom.prune(m, by="random", heads="25%", seed=1)
    m.close()
    matrices = 8 * (4 * 256 * 256 * 3 // 4 + 3 * 256 * 1024) * 2  # 3/4 of attention, the MLP, in bf16
    gc.collect()
    before = rss()
    p.logits([1, 2, 3, 4, 5, 6, 7, 8])
    grown = rss() - before
    print(f"first forward of a pruned bf16 model: RSS grew {grown / 2**20:.2f} MiB "
          f"(pruned matrices {matrices / 2**20:.1f} MiB; bound 4 MiB)")
    p.close()
    assert grown < 4 * 2**20


def test_an_hf_gpt2_holds_its_fused_attention_matrices_once_after_its_first_forward(tmp_path):
    """A GPT-2 folder stores Q, K and V as one Conv1D matrix (c_attn, (in, out)),
    which the loader transposes into memory it owns. Q, K and V used to be
    views of that one buffer, so the first context packed them a second
    time beside it; now they are three matrices the loader packs and whose
    rows it frees. Measured: hr_model_weight_bytes before and after the first
    forward (it counts owned buffers and the context's panels). Q, K and V
    hold 48 KiB here (2 layers of 3 bf16 64 x 64); the one change allowed is
    the tied classifier's, packed from the file's pages into panels of 16
    rows: 101 rows of bf16 grow by 1,408 bytes to 7 whole panels. Bound: 8 KiB.
    The Conv1D matrices are transposed in bf16 (they were converted to f32):
    the weights held must be below the 384 KiB the matrices alone take in f32
    (2 layers of 64 x 192, 64 x 64, 64 x 256 and 256 x 64); measured 233,088
    bytes (429,696 with f32)."""
    folder = tmp_path / "gpt2"
    subprocess.run(["/usr/bin/python3", str(REPO / "tests" / "reference" / "make_hf_random.py"), "gpt2", str(folder),
                    "--dtype", "bf16"], check=True)
    m = headroom.Model.load(folder, threads=1)
    before = m.weight_bytes()
    m.logits([1, 2, 3, 4])
    after = m.weight_bytes()
    print(f"HF GPT-2 weight bytes: {before} before its first forward, {after} after (bound: + 8 KiB; "
          f"Q, K and V are 48 KiB)")
    m.close()
    assert after - before < 8 * 1024
    assert before < 2 * (64 * 192 + 64 * 64 + 64 * 256 + 256 * 64) * 4

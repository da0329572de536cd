"""Threads: Python threads run models concurrently (the GIL is released in
every C call — test_abi checks the library is a CDLL); each thread's results
equal the sequential ones bit for bit; calls on one Model from several
threads are serialised by its lock, never interleaved on its context."""
import threading

import numpy as np

import headroom

from conftest import MODEL, assert_bits


def run_threads(fns):
    out, errors = [None] * len(fns), []

    def work(i):
        try:
            out[i] = fns[i]()
        except BaseException as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return out


def test_views_of_one_model_run_in_parallel_threads_with_the_sequential_results(model):
    prompts = [model.tokenize(s) for s in ("Once upon a time", "Lily had a dog named Max.", "The sun was hot and",
                                           "Tom and Sue went to the park to play with a big red ball.")]
    ref = [model.logits(p) for p in prompts]
    views = [model.with_kv_plan(headroom.KvPlan.full(model)) for _ in prompts]
    try:
        for _ in range(5):
            got = run_threads([lambda v=v, p=p: v.logits(p) for v, p in zip(views, prompts)])
            for g, r in zip(got, ref):
                assert_bits(g, r, "logits computed in a thread")
    finally:
        for v in views:
            v.close()


def test_one_model_shared_by_threads_serialises_its_calls(model):
    ids = model.tokenize("Once upon a time, there was a girl")
    ref_logits, ref_cache = model.run_with_cache(ids, names=["pattern"])
    fns = [lambda: model.run_with_cache(ids, names=["pattern"]) for _ in range(4)]
    fns += [lambda: model.generate("Once upon a time", n=12, temp=0) for _ in range(2)]
    out = run_threads(fns)
    for lg, cache in out[:4]:
        assert_bits(lg, ref_logits, "run_with_cache in a thread")
        assert np.array_equal(cache["pattern", 2], ref_cache["pattern", 2])
    assert out[4] == out[5] == model.generate("Once upon a time", n=12, temp=0)


def test_threads_run_study_calls_on_separate_models(text):
    ms = [headroom.Model.load(MODEL, threads=1) for _ in range(2)]
    try:
        a, b = run_threads([lambda m=m: headroom.heads(m, text, methods=["sink", "prev_token"], tokens=256).to_json()
                            for m in ms])
        assert a == b
    finally:
        for m in ms:
            m.close()

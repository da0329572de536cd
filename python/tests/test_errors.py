"""Errors are exceptions carrying the library's message (the line the CLI
prints after "headroom: error:"), each status its own class; misuse — wrong
dtypes and shapes, closed handles, freeing twice, hooks that raise or keep
their arrays — raises and never crashes, and leaves the model usable."""
import gc

import numpy as np
import pytest

import headroom

from conftest import MODEL, assert_bits, cli_error


def test_load_errors_carry_the_message_the_cli_prints(tmp_path):
    missing = tmp_path / "missing.bin"
    with pytest.raises(headroom.IOError) as e:
        headroom.Model.load(missing)
    assert isinstance(e.value, OSError) and e.value.status == -2 and str(e.value) in cli_error("info", missing)
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(MODEL.read_bytes()[:1000])
    with pytest.raises(headroom.FormatError) as e:
        headroom.Model.load(bad)
    assert isinstance(e.value, ValueError) and str(e.value) == cli_error("info", bad)
    assert str(bad) in str(e.value)


def test_study_errors_carry_the_library_message(model, text, tmp_path):
    with pytest.raises(headroom.InvalidArgument) as e:
        headroom.heads(model, text, methods=["ablation", "nonsense"])
    assert str(e.value) in cli_error("heads", MODEL, "--text", text, "--out", tmp_path / "o", "--methods",
                                       "ablation,nonsense")
    with pytest.raises(headroom.RangeError) as e:
        headroom.heads(model, text, window=1000)
    assert "1000" in str(e.value)
    with pytest.raises(headroom.RangeError) as e:
        headroom.prune(model, by="random", heads="0%")
    assert str(e.value) == cli_error("prune", MODEL, "--by", "random", "--heads", "0%", "--out", tmp_path / "p.gguf")
    with pytest.raises(headroom.InvalidArgument, match="needs head scores"):
        headroom.prune(model, by="ablation", heads="10")
    with pytest.raises(headroom.InvalidArgument):
        model.perplexity("Once upon a time.", ctx=64, protocol="llama.cpp")  # too few tokens for two chunks
    plan = tmp_path / "bad.plan"
    plan.write_text("default full\nlayer 9 full\n")
    with pytest.raises(headroom.Error) as e:
        headroom.KvPlan.load(plan, model)
    assert str(e.value) in cli_error("ppl", MODEL, "--text", text, "--kv", plan)


def test_outputs_never_replace_inputs(model, tmp_path):
    with pytest.raises(headroom.InvalidArgument, match="input"):
        model.save(MODEL, force=True)
    with pytest.raises(headroom.InvalidArgument, match="input"):
        model.save(MODEL.parent / "tok512.bin", force=True)
    foreign = tmp_path / "notes.gguf"
    foreign.write_text("my notes")
    with pytest.raises(headroom.InvalidArgument):
        model.save(foreign)
    assert foreign.read_text() == "my notes"
    model.save(foreign, force=True)
    with headroom.Model.load(foreign, threads=1) as m2:
        ids = model.tokenize("Hello")
        assert_bits(m2.logits(ids), model.logits(ids), "saved GGUF vs model")


@pytest.mark.parametrize("bad,exc", [
    ([1.0, 2.0], TypeError), (np.array([1, 2], dtype=np.float32), TypeError), ([[1, 2], [3, 4]], ValueError),
    ([1, 512], ValueError), ([1, -1], ValueError), ([], ValueError), (np.arange(600) % 500, ValueError),
    (np.array([1, 2**40]), ValueError), ([True, False], TypeError), (["a", "b"], TypeError), (None, TypeError)])
def test_bad_token_arrays_raise_before_any_work(model, bad, exc):
    with pytest.raises(exc):
        model.logits(bad)
    with pytest.raises(exc):
        model.run_with_cache(bad, names=["pattern"])


def test_token_arrays_of_any_integer_type_are_accepted(model):
    ref = model.logits([1, 403, 407])
    for a in (np.array([1, 403, 407], dtype=np.int64), np.array([1, 403, 407], dtype=np.uint16), (1, 403, 407),
              np.array([0, 1, 403, 407])[1:], np.array([407, 403, 1])[::-1]):
        assert_bits(model.logits(a), ref, f"ids as {type(a).__name__}")


def test_bad_gates_and_means_raise_and_change_nothing(model):
    ids = model.tokenize("Once upon a time")
    ref = model.logits(ids)
    L, H = model.config.n_layers, model.config.max_heads
    for bad, exc in [(np.ones((L, H + 1)), ValueError), (np.ones(L * H), ValueError), (np.full((L, H), np.nan), ValueError),
                     (np.array([["a"] * H] * L), TypeError)]:
        with pytest.raises(exc):
            model.set_head_gates(bad)
    with pytest.raises(IndexError):
        model.mask_heads([(L, 0)])
    with pytest.raises(ValueError):
        model.set_head_means(np.zeros((L, H)))
    assert np.all(model.head_gates() == 1)
    assert_bits(model.logits(ids), ref, "after rejected gates")
    with pytest.raises(RuntimeError):
        with model.gates(mask=[(0, 1)]):
            raise RuntimeError("inside")
    assert np.all(model.head_gates() == 1)


def test_closed_handles_raise_and_closing_twice_is_harmless():
    m = headroom.Model.load(MODEL, threads=1)
    ids = m.tokenize("Once upon a time")
    m.logits(ids)
    m.close()
    m.close()
    assert m.closed
    for call in (lambda: m.logits(ids), lambda: m.tokenize("x"), lambda: m.run_with_cache(ids),
                 lambda: m.set_head_gates(None), lambda: m.generate("x", 2), lambda: m.kv_bytes(),
                 lambda: m.save("/tmp/never.gguf"), lambda: headroom.heads(m, "text " * 300)):
        with pytest.raises(headroom.InvalidArgument, match="closed"):
            call()
    with headroom.Model.load(MODEL, threads=1) as m2:
        pass
    with pytest.raises(headroom.InvalidArgument, match="closed"):
        m2.logits(ids)


def test_objects_made_from_a_model_outlive_its_close(text):
    m = headroom.Model.load(MODEL, threads=1)
    ids = m.tokenize("Once upon a time, there was")
    ref = m.logits(ids)
    lab = headroom.heads(m, text, methods=["sink", "ablation"], tokens=256)
    view = m.with_kv_plan(headroom.KvPlan.full(m))
    small = headroom.prune(m, lab, by="ablation", heads="5")
    ref_small = small.logits(ids)
    m.close()
    assert_bits(view.logits(ids), ref, "KV-plan view after the base closed")
    assert_bits(small.logits(ids), ref_small, "pruned model after the base closed")
    assert lab.to_json().startswith("{")
    for o in (view, small, lab):
        o.close()
        o.close()
    del view, small, lab
    gc.collect()


def test_hooks_that_raise_stop_the_forward_and_leave_the_model_usable(model):
    ids = model.tokenize("Once upon a time")
    ref = model.logits(ids)

    class Boom(Exception):
        pass

    def boom(x, layer):
        raise Boom("from the hook")

    for key in [("head_out", 1), ("pattern", 0), ("resid_pre", 3), "final"]:
        with pytest.raises(Boom):
            model.run_with_hooks(ids, {key: boom})
        assert_bits(model.logits(ids), ref, f"after a raising {key} hook")
    with pytest.raises(ValueError, match="shape"):
        model.run_with_hooks(ids, {("head_out", 0): lambda z, l: np.zeros((1, 2))})
    with pytest.raises(headroom.InvalidArgument, match="read-only"):
        model.run_with_hooks(ids, {("pattern", 0): lambda p, l: p * 2})
    with pytest.raises(KeyError):
        model.run_with_hooks(ids, {("nothing", 0): boom})
    with pytest.raises(ValueError):
        model.run_with_hooks(ids, {("head_out", 99): boom})
    with pytest.raises(TypeError):
        model.run_with_hooks(ids, {("head_out", 0): "not callable"})
    assert_bits(model.logits(ids), ref, "after misused hooks")


def test_a_hook_keeping_its_array_is_refused(model):
    ids = model.tokenize("Once upon a time")
    kept = []
    with pytest.raises(headroom.InvalidArgument, match="copy"):
        model.run_with_hooks(ids, {("head_out", 2): lambda z, l: kept.append(z)})
    kept.clear()
    with pytest.raises(headroom.InvalidArgument, match="copy"):
        model.run_with_hooks(ids, {("resid_post", 2): lambda x, l: kept.append(x[1:])})
    kept.clear()
    model.run_with_hooks(ids, {("head_out", 2): lambda z, l: kept.append(z.copy())})
    assert kept[0].shape == (ids.size, 8, 8)


def test_an_exception_in_a_progress_callback_stops_the_head_lab(model, text):
    calls = []

    def stop(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        headroom.heads(model, text, methods=["ablation"], tokens=512, progress=stop)
    assert len(calls) == 2
    r = headroom.heads(model, text, methods=["sink"], tokens=256)
    assert r.methods == ["sink"]


def test_texts_are_str_or_paths(model, tmp_path):
    with pytest.raises(TypeError):
        headroom.heads(model, b"bytes are ambiguous")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff\xfe")
    with pytest.raises(headroom.FormatError, match="UTF-8"):
        model.perplexity(bad)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(headroom.InvalidArgument, match="empty"):
        headroom.heads(model, empty)
    with pytest.raises(ValueError):
        model.tokenize("lone \ud800 surrogate")


def test_a_hook_cannot_close_or_rerun_its_own_model_and_other_threads_wait():
    import threading
    m = headroom.Model.load(MODEL, threads=1)
    ids = m.tokenize("Once upon a time")
    ref = m.logits(ids)
    with pytest.raises(headroom.InvalidArgument, match="inside its own"):
        m.run_with_hooks(ids, {("resid_pre", 1): lambda x, l: m.close()})
    with pytest.raises(headroom.InvalidArgument, match="cannot run the model"):
        m.run_with_hooks(ids, {("resid_pre", 1): lambda x, l: m.logits(ids)})
    with pytest.raises(headroom.InvalidArgument, match="cannot run the model"):
        m.perplexity("Once upon a time there was a girl. " * 20, ctx=32, progress=lambda d, t: m.logits(ids))
    assert_bits(m.logits(ids), ref, "after refused re-entry")
    closer = []

    def hook(x, layer):  # another thread's close must wait for this pass to end
        t = threading.Thread(target=m.close)
        t.start()
        t.join(0.2)
        closer.append(t)
        assert t.is_alive(), "close() did not wait for the running forward pass"

    assert_bits(m.run_with_hooks(ids, {("resid_pre", 2): hook}), ref, "the pass during a waiting close")
    closer[0].join()
    assert m.closed


def test_closed_study_objects_raise_invalid_argument(model, text):
    lab = headroom.heads(model, "Once upon a time there was a girl. She played with her dog in the park all day.",
                         methods=["sink"], tokens=16, window=16)
    sc = lab.to_scores()
    plan = headroom.KvPlan.full(model)
    for obj, use, what in ((lab, lambda: lab.to_json(), "head-lab result"), (sc, lambda: sc.methods, "score table"),
                           (plan, lambda: plan[0, 0], "KV plan")):
        obj.close()
        with pytest.raises(headroom.InvalidArgument, match=f"the {what} is closed"):
            use()
        obj.close()

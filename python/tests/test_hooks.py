"""Activation caches and hooks: run_with_cache holds exactly what the C
hooks receive (tests/tools/hr_hook_dump), patterns and head outputs agree
with the PyTorch reference's observer, hooks are interventions (zeroing a
head in a hook equals its gate at 0, bit for bit) and only what is asked
for is recorded."""
import sys

import numpy as np
import pytest

from conftest import MODEL, REPO, assert_bits, max_diff, tool

POINTS = {"pattern": 1, "head_out": 2, "resid_pre": 4, "attn_out": 8, "mlp_out": 16, "resid_post": 32, "final": 64}


def c_events(tmp_path, ids, mask):
    """The events hr_hook_dump records: [(name, layer, head, pos0, (n, cols) array)]."""
    out = tmp_path / "events.bin"
    tool("hr_hook_dump", MODEL, "--tokens", ",".join(map(str, ids)), "--mask", mask, "--out", out, "--threads", 1)
    raw, pos, evs = out.read_bytes(), 0, []
    names = {v: k for k, v in POINTS.items()}
    while pos < len(raw):
        point, layer, head, n, pos0, cols = np.frombuffer(raw, dtype=np.int32, count=6, offset=pos)
        pos += 24
        data = np.frombuffer(raw, dtype=np.float32, count=int(n * cols), offset=pos).reshape(n, cols)
        pos += 4 * int(n * cols)
        evs.append((names[int(point)], int(layer), int(head), int(pos0), data))
    return evs


def test_the_cache_holds_exactly_what_the_c_hooks_receive(model, ids, tmp_path):
    logits, cache = model.run_with_cache(ids, names=list(POINTS))
    assert_bits(logits, model.logits(ids), "run_with_cache logits vs logits")
    evs = c_events(tmp_path, ids, sum(POINTS.values()))
    c, n, seen = model.config, ids.size, set()
    for name, layer, head, pos0, data in evs:
        assert pos0 == 0 and data.shape[0] == n
        if name == "pattern":
            got = cache["pattern", layer][head]
        elif name == "head_out":
            got = cache["head_out", layer][:, head, :]
        elif name == "final":
            got = cache["final"]
        else:
            got = cache[name, layer]
        assert np.array_equal(got.view(np.uint32), data.view(np.uint32)), f"{name} {layer}.{head} differs"
        seen.add((name, None if name == "final" else layer))
    assert seen == set(cache.keys()), "the cache and the C events cover different points"
    assert len(evs) == c.n_layers * (2 * c.max_heads + 4) + 1
    print(f"{len(evs)} C hook events equal the cache bit for bit")
    assert cache["pattern", 0].shape == (c.n_heads[0], n, n)
    assert cache["head_out", 0].shape == (n, c.n_heads[0], c.head_dim)
    assert cache["resid_pre", 0].shape == cache["final"].shape == (n, c.dim)


def test_only_the_names_and_layers_asked_for_are_recorded(model, ids):
    _, cache = model.run_with_cache(ids, names=["pattern"], layers=[1, 3])
    assert sorted(cache.keys()) == [("pattern", 1), ("pattern", 3)]
    _, cache = model.run_with_cache(ids, names="final")
    assert list(cache.keys()) == [("final", None)]
    full = model.run_with_cache(ids, names=["pattern"])[1]
    assert_bits(cache_l3 := model.run_with_cache(ids, names=["pattern"], layers=3)[1]["pattern", 3],
                full["pattern", 3], "pattern of layer 3 alone vs with all layers")
    assert cache_l3.shape[0] == model.config.n_heads[3]


def test_transformerlens_names_address_the_same_arrays(model, ids):
    _, cache = model.run_with_cache(ids, names=list(POINTS))
    assert cache["blocks.2.attn.hook_pattern"] is cache["pattern", 2]
    assert cache["blocks.2.attn.hook_z"] is cache["head_out", 2]
    assert cache["blocks.0.hook_resid_pre"] is cache["resid_pre", 0]
    assert cache["ln_final.hook_normalized"] is cache["final"]
    assert cache.stack("pattern").shape == (5, 8, ids.size, ids.size)
    with pytest.raises(KeyError):
        cache["blocks.0.hook_nothing"]


def test_patterns_and_head_outputs_agree_with_the_pytorch_reference(model, ids):
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import llama_ref
    import torch
    ref = llama_ref.Llama(str(MODEL), dtype=torch.float64)
    seen = {}
    ref.observer = lambda layer, pos0, probs, out: seen.update({layer: (probs.numpy(), out.numpy())})
    ref.logits(ids.tolist())
    _, cache = model.run_with_cache(ids, names=["pattern", "head_out"])
    dp = max(max_diff(cache["pattern", l], seen[l][0]) for l in seen)
    dz = max(max_diff(cache["head_out", l], seen[l][1]) for l in seen)
    print(f"pattern vs llama_ref: max |diff| = {dp:.3g}; head_out: {dz:.3g} (tolerance 1e-5)")
    assert dp <= 1e-5 and dz <= 1e-5
    assert np.allclose(cache["pattern", 0].sum(-1), 1, atol=1e-5)
    assert np.all(np.triu(cache["pattern", 0], 1) == 0)


@pytest.mark.parametrize("heads", [[(2, 3)], [(0, 0), (4, 7), (4, 2)]])
def test_a_hook_zeroing_a_head_equals_its_gate_at_zero(model, ids, heads):
    def zero(z, layer):
        for l, h in heads:
            if l == layer:
                z[:, h, :] = 0

    hooked = model.run_with_hooks(ids, {("head_out", None): zero})
    with model.gates(mask=heads):
        gated = model.logits(ids)
    assert_bits(hooked, gated, f"hook zeroing {heads} vs gates")
    assert max_diff(hooked, model.logits(ids)) > 1e-3, "the ablation must change the logits"
    assert np.all(model.head_gates() == 1)


def test_a_hook_returning_the_mean_equals_mean_ablation(model, ids):
    _, cache = model.run_with_cache(ids, names=["head_out"])
    c = model.config
    means = np.zeros((c.n_layers, c.max_heads, c.head_dim), dtype=np.float32)
    for l in range(c.n_layers):
        means[l] = cache["head_out", l].mean(axis=0)

    def to_mean(z, layer):
        out = z.copy()
        out[:, 5, :] = means[layer, 5]
        return out

    hooked = model.run_with_hooks(ids, {("head_out", 1): to_mean})
    model.set_head_means(means)
    try:
        with model.gates(mask=[(1, 5)]):
            ablated = model.logits(ids)
    finally:
        model.set_head_means(None)
    assert_bits(hooked, ablated, "hook setting head 1.5 to its mean vs mean-ablation")


def test_residual_hooks_are_interventions(model, ids):
    base = model.logits(ids)
    same = model.run_with_hooks(ids, {("resid_pre", 2): lambda x, l: None, "final": lambda x, l: None})
    assert_bits(same, base, "hooks that change nothing")
    for key in [("resid_pre", 2), ("attn_out", 1), ("mlp_out", 4), ("resid_post", 0), "final"]:
        def scale(x, layer):
            x *= 0.5
        assert max_diff(model.run_with_hooks(ids, {key: scale}), base) > 1e-3, f"{key} had no effect"
    # the final normed state a hook reads: the logits are its product with the tied embedding
    captured = {}
    lg = model.run_with_hooks(ids, {"final": lambda x, l: captured.update(x=x.copy())})
    assert_bits(captured["x"], model.run_with_cache(ids, names=["final"])[1]["final"], "final hook view vs cache")
    assert_bits(lg, base, "logits with a reading hook")
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import llama_ref
    _, w = llama_ref.load_llama2c(str(MODEL))
    d = max_diff(captured["x"].astype(np.float64) @ w["wcls"].numpy().astype(np.float64).T, base)
    print(f"final state x W_cls^T vs logits: max |diff| = {d:.3g} (tolerance 1e-4)")
    assert d <= 1e-4


def test_pattern_hooks_see_read_only_views_of_every_head(model, ids):
    _, cache = model.run_with_cache(ids, names=["pattern"])
    got = {}

    def read(p, layer):
        assert not p.flags.writeable
        got[layer] = p.copy()
        with pytest.raises(ValueError):
            p[0, 0, 0] = 1

    assert_bits(model.run_with_hooks(ids, {("pattern", None): read}), model.logits(ids), "logits with pattern hooks")
    for l in range(model.config.n_layers):
        assert_bits(got[l], cache["pattern", l], f"pattern hook view of layer {l}")

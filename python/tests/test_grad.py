"""Gradients from Python (headroom.grad / Model.grad, over grad.h) equal an
independent float64 PyTorch autograd of the architecture (tests/reference:
llama_ref.py reads the llama2.c file itself, grad_ref.py is the loss) within
1e-4 relative, and equal what the C library's head lab computes from the
same backward pass (its `grad` and `taylor` scores); headroom.heads with
methods grad / taylor writes the CLI's heads.json byte for byte. Also:
zero-copy arrays outliving close(), gates, threads, errors."""
import json
import sys

import numpy as np
import pytest

import headroom

from conftest import MODEL, REPO, cli

TOL = 1e-4


def rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    d = float(np.max(np.abs(got - want)))
    return d / float(np.max(np.abs(want))), d


@pytest.fixture(scope="module")
def windows(model, text):
    """Two windows of 24 tokens of the calibration text, BOS first (the head lab's layout)."""
    ids = model.tokenize(text.read_text()[:2000], bos=False)
    return np.array([np.concatenate(([1], ids[k * 23:(k + 1) * 23])) for k in range(2)], dtype=np.int32)


def torch_reference(windows, gates):
    """float64 autograd of the mean loss of the windows with respect to the head
    and neuron gates, layer 0's W_q and the last window's input embeddings."""
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import grad_ref
    import llama_ref
    c, w = llama_ref.load_llama2c(str(MODEL), dtype=torch.float64)
    T = {"token_embd.weight": w["tok_emb"], "output_norm.weight": w["rms_final"]}
    for l in range(c.n_layers):
        p = f"blk.{l}."
        for name, src in (("attn_norm.weight", "rms_att"), ("attn_q.weight", "wq"), ("attn_k.weight", "wk"),
                          ("attn_v.weight", "wv"), ("attn_output.weight", "wo"), ("ffn_norm.weight", "rms_ffn"),
                          ("ffn_gate.weight", "w1"), ("ffn_down.weight", "w2"), ("ffn_up.weight", "w3")):
            T[p + name] = w[src][l].clone()
        T[p + "head_gate"] = torch.tensor(gates[l], dtype=torch.float64)
        T[p + "neuron_gate"] = torch.ones(c.hidden, dtype=torch.float64)
    for t in T.values():
        t.requires_grad_(True)
    cfg = {"head_dim": c.head_dim, "rope_theta": c.rope_theta, "rope_scaling": None, "norm": "rms",
           "norm_eps": c.norm_eps, "n_layers": c.n_layers, "n_head": [c.n_heads] * c.n_layers,
           "n_head_kv": [c.n_kv_heads] * c.n_layers, "n_ff": [c.hidden] * c.n_layers, "pos": "rope",
           "mlp": "swiglu", "tied": c.tied}
    ref = grad_ref.Model(cfg, T, gates=True, lora=False)
    names = [f"blk.{l}.head_gate" for l in range(c.n_layers)] + \
            [f"blk.{l}.neuron_gate" for l in range(c.n_layers)] + ["blk.0.attn_q.weight"]
    losses = [ref.loss(list(map(int, win))) for win in windows]
    g = torch.autograd.grad(sum(losses) / len(losses), [T[n] for n in names])
    box = {}

    def hook(x):
        box["x0"] = x.detach().requires_grad_(True)
        return box["x0"]

    last = ref.loss(list(map(int, windows[-1])), x0_hook=hook) / len(windows)
    emb = torch.autograd.grad(last, box["x0"])[0].numpy()
    L = c.n_layers
    return {"head_gates": np.stack([x.numpy() for x in g[:L]]), "neuron_gates": np.stack([x.numpy() for x in g[L:2 * L]]),
            "blk.0.attn_q.weight": g[2 * L].numpy(), "embeddings": emb, "losses": [float(x) for x in losses]}


@pytest.mark.parametrize("masked", [False, True], ids=["gates at 1", "heads 3.5 and 1.0 masked"])
def test_gradients_agree_with_float64_pytorch_autograd(model, windows, masked):
    gates = np.ones((5, 8), np.float32)
    if masked:
        gates[3, 5] = gates[1, 0] = 0
    want = torch_reference(windows, gates)
    with model.gates(gates=gates):
        g = headroom.grad(model, windows, wrt=["head_gates", "neuron_gates", "embeddings", "blk.0.attn_q.weight"])
    with g:
        for name in ("head_gates", "neuron_gates", "blk.0.attn_q.weight", "embeddings"):
            r, d = rel(g[name], want[name])
            print(f"{name}: relative error {r:.2e} (max |diff| {d:.2e}, tolerance {TOL})")
            assert g[name].shape == want[name].shape and r <= TOL, name
        r, d = rel(g.losses, want["losses"])
        print(f"window losses: relative error {r:.2e}")
        assert r <= 1e-5


def test_grad_and_taylor_scores_equal_the_c_head_lab(model, text, windows):
    # the head lab's windows of 512 tokens: [BOS, ids[w*255 .. (w+1)*255)], w < 2
    ids = model.tokenize(text.read_text(), bos=False)
    wins = np.array([np.concatenate(([1], ids[k * 255:(k + 1) * 255])) for k in range(2)], dtype=np.int32)
    with headroom.heads(model, text, methods=["grad", "taylor"], tokens=512, threads=1) as lab:
        per = [headroom.grad(model, w, wrt="head_gates")["head_gates"] for w in wins]
        mine = np.mean([np.abs(p.astype(np.float64)) for p in per], axis=0)
        r, d = rel(mine, lab.scores["grad"])
        print(f"grad scores: mean over windows of |dL/dgate| vs the head lab: relative {r:.2e} (max |diff| {d:.2e})")
        assert r <= 1e-6
        with model.grad(wins, wrt="weights") as g:
            r, d = rel(g.taylor_heads(), lab.scores["taylor"])
            print(f"taylor scores vs the head lab: relative {r:.2e} (max |diff| {d:.2e})")
            assert r <= 1e-6
            assert g.taylor_neurons().shape == (5, model.config.max_ff)


def test_heads_with_grad_and_taylor_write_the_cli_heads_json(model, text, tmp_path):
    cli("heads", MODEL, "--text", text, "--out", tmp_path / "lab", "--tokens", 512, "--seed", 3, "--threads", 1,
        "--methods", "grad,taylor", "--top", 1)
    with headroom.heads(model, text, methods=["grad", "taylor"], tokens=512, seed=3, threads=1) as lab:
        assert lab.to_json() == (tmp_path / "lab" / "heads.json").read_text()
        assert set(lab.methods) == {"grad", "taylor"}
        doc = json.loads(lab.to_json())
        assert all(rec["scores"]["grad"] >= 0 for rec in doc["heads"])


def check_gate_identity(weights, g, label):
    """Analytic identity (gates at 1): dL/d(gate h) = sum over head h's W_o
    columns of w * dL/dw, every layer of stories260K (8 heads of 8 dims)."""
    for l in range(5):
        w, gw = weights[f"blk.{l}.attn_output.weight"].astype(np.float64), g[f"blk.{l}.attn_output.weight"]
        sums = [float(np.sum(w[:, h * 8:(h + 1) * 8] * gw[:, h * 8:(h + 1) * 8])) for h in range(8)]
        r, d = rel(sums, g["head_gates"][l])
        print(f"{label} layer {l}: W_o term vs gate gradient: relative {r:.2e} (max |diff| {d:.2e})")
        assert r <= 1e-4


def test_weight_gradients_are_zero_copy_and_outlive_close(ids):
    m = headroom.Model.load(MODEL, threads=1)
    g = m.grad(ids, wrt=["blk.*.attn_output.weight", "head_gates"])
    a = g["blk.2.attn_output.weight"]
    assert a.shape == (64, 64) and not a.flags.writeable and not a.flags.owndata
    assert len(g) == 6 and "blk.4.attn_output.weight" in g and "blk.0.attn_q.weight" not in g
    check_gate_identity(m.weights(), g, "f32")
    before = a.copy()
    g.close()
    m.close()
    assert np.array_equal(a, before)  # the array keeps the library's buffer (and the model) alive
    with pytest.raises(headroom.InvalidArgument, match="closed"):
        g["head_gates"]
    g.close()  # twice is harmless
    del a


def test_threads_give_bit_identical_gradients_and_recompute_too(model, windows):
    a = model.grad(windows, wrt=["head_gates", "blk.1.ffn_up.weight"], threads=1)
    b = model.grad(windows, wrt=["head_gates", "blk.1.ffn_up.weight"], threads=2, recompute=True)
    for k in ("head_gates", "blk.1.ffn_up.weight"):
        assert np.array_equal(a[k].view(np.uint32), b[k].view(np.uint32)), k
    assert a.loss == b.loss and abs(a.loss - np.mean([model.loss(w) for w in windows])) < 1e-5


def test_bad_grad_arguments_are_clear_errors(model, ids):
    with pytest.raises(headroom.NotFound, match="names no weight tensor"):
        model.grad(ids, wrt=["blk.9.attn_q.weight"])
    with pytest.raises(ValueError, match="at least 2 tokens"):
        model.grad(ids[:1])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.grad([1, 2, 99999])
    with pytest.raises(TypeError, match="names"):
        model.grad(ids, wrt=[3])
    with pytest.raises(ValueError, match="wrt is empty"):
        model.grad(ids, wrt=[])
    with pytest.raises(KeyError, match="no gradient"):
        model.grad(ids)["neuron_gates"]
    model.set_head_means(np.zeros((5, 8, 8), np.float32))
    try:
        with model.gates(mask=[(0, 0)]), pytest.raises(headroom.Unsupported, match="mean-ablated"):
            model.grad(ids)
    finally:
        model.set_head_means(None)


def bf16_round(a):
    """float32 -> bf16 -> float32, round to nearest even (numpy, from the format's definition)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def test_a_bf16_models_gradients_come_from_its_typed_weights_and_weights_gives_their_f32_values(ids, tmp_path):
    """A bf16 GGUF: the backward reads its matrices one layer at a time; its
    gate gradients still equal sum(w * dL/dw) over each head's W_o columns, and
    weights() (which converts, once) holds the f32 weights rounded to bf16."""
    f32 = headroom.Model.load(MODEL, threads=1)
    path = tmp_path / "bf16.gguf"
    f32.save(str(path), dtype="bf16", tokenizer=False)
    m = headroom.Model.load(str(path), threads=1)
    g = m.grad(ids, wrt=["blk.*.attn_output.weight", "head_gates"])
    w32, wbf = f32.weights(), m.weights()
    for name, v in w32.items():
        want = bf16_round(v) if v.ndim == 2 else v
        assert np.array_equal(wbf[name], want), name
    check_gate_identity(wbf, g, "bf16")
    g.close()
    m.close()
    f32.close()

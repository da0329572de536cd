"""Model: logits, tokens, generation, loss and perplexity against the C
library (tests/tools/hr_logits), the CLI (headroom tokenize / generate /
ppl) and an independent PyTorch forward (tests/reference/llama_ref.py)."""
import re
import sys

import numpy as np
import pytest

import headroom

from conftest import GGUF, MODEL, REPO, assert_bits, cli, max_diff, require, tool


def c_logits(tmp_path, ids, mode="prefill"):
    out = tmp_path / f"logits_{mode}.f32"
    tool("hr_logits", MODEL, "--tokens", ",".join(map(str, ids)), "--out", out, "--mode", mode, "--threads", 1)
    return np.fromfile(out, dtype=np.float32).reshape(len(ids), -1)


def test_config_reads_the_llama2c_header(model):
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import llama_ref
    ref, _ = llama_ref.load_llama2c(str(MODEL))
    c = model.config
    assert (c.dim, c.n_layers, c.vocab_size, c.seq_len, c.head_dim) == (ref.dim, ref.n_layers, ref.vocab,
                                                                         ref.seq_len, ref.head_dim)
    assert c.n_heads == [ref.n_heads] * ref.n_layers and c.n_kv_heads == [ref.n_kv_heads] * ref.n_layers
    assert c.n_ff == [ref.hidden] * ref.n_layers and c.architecture == "llama" and c.tied_classifier == ref.tied
    assert c.d_model == c.dim and c.n_ctx == c.seq_len and c.d_head == c.head_dim


def test_logits_equal_the_c_library_bit_for_bit(model, ids, tmp_path):
    lg = model.logits(ids)
    assert lg.dtype == np.float32 and lg.shape == (ids.size, model.config.vocab_size)
    assert_bits(lg, c_logits(tmp_path, ids, "prefill"), "Model.logits vs hr_logits prefill")
    assert_bits(lg, c_logits(tmp_path, ids, "decode"), "Model.logits vs hr_logits decode")
    assert_bits(model(ids), lg, "Model.__call__ vs logits")


def test_logits_agree_with_the_pytorch_reference(model, ids):
    sys.path.insert(0, str(REPO / "tests" / "reference"))
    import llama_ref
    import torch
    ref = llama_ref.Llama(str(MODEL), dtype=torch.float64).logits(ids.tolist()).numpy()
    d = max_diff(model.logits(ids), ref)
    print(f"Model.logits vs llama_ref (float64): max |diff| = {d:.3g} (tolerance 1e-4)")
    assert d <= 1e-4


def test_a_gguf_of_the_same_weights_gives_the_same_logits(model, ids):
    require(GGUF)
    with headroom.Model.load(GGUF, threads=1) as g:
        assert "gguf" in g.config.format.lower()
        d = max_diff(g.logits(ids), model.logits(ids))
        print(f"GGUF vs .bin logits: max |diff| = {d:.3g} (tolerance 1e-5)")
        assert d <= 1e-5


def test_tokenize_and_decode_equal_the_cli(model):
    s = "Lily and Max went to the park. They saw a big, red ball!"
    ids = model.tokenize(s, bos=False)
    want = [int(t) for t in cli("tokenize", MODEL, s).stdout.split()]
    assert ids.tolist() == want and ids.dtype == np.int32
    assert model.tokenize(s).tolist() == [int(t) for t in cli("tokenize", MODEL, s, "--bos").stdout.split()]
    assert model.decode(ids) == cli("tokenize", MODEL, "--decode", " ".join(map(str, want))).stdout.rstrip("\n")
    assert model.decode(model.tokenize(s)) == s
    assert "".join(model.to_str_tokens(ids)).strip() == s


@pytest.mark.parametrize("temp,seed", [(0, 42), (0.8, 7)])
def test_generate_prints_what_the_cli_prints(model, temp, seed):
    got = model.generate("Once upon a time", n=40, temp=temp, seed=seed)
    want = cli("generate", MODEL, "--prompt", "Once upon a time", "-n", 40, "--temp", temp, "--seed", seed,
               "--threads", 1).stdout
    assert got + "\n" == want
    ids = model.generate(model.tokenize("Once upon a time"), n=40, temp=temp, seed=seed)
    assert model.decode(np.concatenate([model.tokenize("Once upon a time"), ids])) == got


def test_loss_is_the_mean_next_token_nll_of_the_logits(model, ids):
    lg = model.logits(ids).astype(np.float64)[:-1]
    m = lg.max(axis=1, keepdims=True)
    nll = np.log(np.exp(lg - m).sum(axis=1)) + m[:, 0] - lg[np.arange(ids.size - 1), ids[1:]]
    d = abs(model.loss(ids) - nll.mean())
    print(f"loss vs numpy log-softmax (float64): |diff| = {d:.3g} (tolerance 1e-7)")
    assert d <= 1e-7


@pytest.mark.parametrize("protocol,args", [("sliding", ["--ctx", 128]), ("llama.cpp", ["--ctx", 64])])
def test_perplexity_equals_the_cli(model, tmp_path, text, protocol, args):
    small = tmp_path / "t.txt"
    small.write_bytes(text.read_bytes()[:6000])
    out = cli("ppl", MODEL, "--text", small, "--protocol", protocol, "--threads", 1, *args).stdout
    r = model.perplexity(small, ctx=args[1], protocol=protocol)
    want = dict(re.findall(r"^([a-zA-Z ]+):\s+(.*)$", out, re.M))
    assert f"{r['mean_nll']:.6f}" == want["mean NLL"]
    assert f"{r['ppl']:.4f} +/- {r['ppl_stderr']:.5f}" == want["perplexity"]
    assert str(r["n_scored"]) + " tokens" == want["scored"]
    assert f"({r['n_tokens']} tokens with BOS)" in want["text"]
    r2 = model.perplexity(small.read_text(), ctx=args[1], protocol=protocol)
    assert r2["mean_nll"] == r["mean_nll"]


def test_threads_do_not_change_logits(model, ids):
    with headroom.Model.load(MODEL, threads=2) as m2:
        assert_bits(m2.logits(ids), model.logits(ids), "threads 2 vs 1")

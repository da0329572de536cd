"""headroom.finetune: the model fine-tuned from Python is the CLI's
`headroom finetune` model byte for byte (same options, same text), the
held-out loss goes down (measured independently, by Model.perplexity on the
text's held-out tail), and bad values raise headroom.Error with the
library's message (the CLI's too) before any work."""
import pathlib

import pytest

import headroom

from conftest import MODEL, SHARED, cli, cli_error, require

SHAKESPEARE = SHARED / "data" / "text" / "tinyshakespeare.txt"


@pytest.mark.parametrize("py_opts, cli_opts", [
    (dict(lora_rank=4, lora_targets="q,v,down", steps=6, lr=2e-3, warmup=2, seed=7),
     ["--lora-rank", 4, "--lora-targets", "q,v,down", "--steps", 6, "--lr", 2e-3, "--warmup", 2, "--seed", 7]),
    (dict(full=True, only="heads:1.2;mlp:3", steps=4, lr=1e-3, batch=2, accum=2, window=64, seed=3),
     ["--full", "--only", "heads:1.2;mlp:3", "--steps", 4, "--lr", 1e-3, "--batch", 2, "--accum", 2, "--window", 64,
      "--seed", 3]),
], ids=["lora", "full-only"])
def test_the_python_finetuned_model_is_the_cli_gguf_byte_for_byte(model, text, tmp_path, py_opts, cli_opts):
    ft = headroom.finetune(model, text, threads=1, **py_opts)
    try:
        assert len(ft.losses) == py_opts["steps"] and ft.info["steps"] == py_opts["steps"]
        ft.save(tmp_path / "py.gguf")
    finally:
        ft.close()
    cli("finetune", MODEL, "--text", text, *cli_opts, "--threads", 1, "--out", tmp_path / "cli.gguf")
    a, b = (tmp_path / "py.gguf").read_bytes(), (tmp_path / "cli.gguf").read_bytes()
    print(f"python {len(a)} bytes, CLI {len(b)} bytes, first difference at "
          f"{next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)}")
    assert a == b


@pytest.mark.parametrize("py_opts", [
    dict(lora_rank=4, steps=4, lr=2e-3, seed=5),
    dict(full=True, steps=3, lr=1e-3, batch=2, window=64, seed=2),
], ids=["lora", "full"])
def test_recompute_gives_the_same_merged_weights_bit_for_bit_as_the_cli(model, text, tmp_path, py_opts):
    """recompute=True (hr_train_params.recompute) recomputes activations in
    the backward with the same code: the C side guarantees the same updates,
    so the saved model equals the one trained with kept activations, and the
    CLI's with --recompute, byte for byte."""
    out = {}
    for rc in (False, True):
        ft = headroom.finetune(model, text, threads=1, recompute=rc, **py_opts)
        try:
            ft.save(tmp_path / f"rc{int(rc)}.gguf")
        finally:
            ft.close()
        out[rc] = (tmp_path / f"rc{int(rc)}.gguf").read_bytes()
    opts = ["--full"] if py_opts.get("full") else ["--lora-rank", py_opts["lora_rank"]]
    for k in ("steps", "lr", "batch", "window", "seed"):
        if k in py_opts:
            opts += ["--" + k, py_opts[k]]
    cli("finetune", MODEL, "--text", text, *opts, "--recompute", "--threads", 1, "--out", tmp_path / "cli.gguf")
    c = (tmp_path / "cli.gguf").read_bytes()
    print(f"kept {len(out[False])} bytes, recompute {len(out[True])} bytes, CLI --recompute {len(c)} bytes; first "
          f"difference {next((i for i, (x, y) in enumerate(zip(out[False], out[True])) if x != y), None)}")
    assert out[True] == out[False]
    assert out[True] == c


def test_the_held_out_loss_goes_down_measured_by_perplexity_on_the_held_out_tail(model, tmp_path):
    require(SHAKESPEARE)
    data = SHAKESPEARE.read_text()[:200000]  # TinyStories model, Shakespeare text: room to learn
    src = tmp_path / "shakespeare.txt"
    src.write_text(data)
    tail = data[-len(data) // 20:]  # inside the held-out 10%: never trained on
    steps = []
    ft = headroom.finetune(model, src, lora_rank=8, steps=30, lr=3e-3, seed=1, threads=1,
                           progress=lambda done, total: steps.append((done, total)))
    try:
        before = model.perplexity(tail, ctx=256)["mean_nll"]
        after = ft.perplexity(tail, ctx=256)["mean_nll"]
        print(f"held-out tail mean NLL {before:.4f} -> {after:.4f}; the library's held-out loss "
              f"{ft.info['heldout_loss_before']:.4f} -> {ft.info['heldout_loss']:.4f}; "
              f"training loss {ft.losses[0]:.4f} (step 1) -> {ft.losses[-1]:.4f} (step 30)")
        assert after < before - 0.05
        assert ft.info["heldout_loss"] < ft.info["heldout_loss_before"] - 0.05
        assert steps[-1] == (30, 30) and len(ft.losses) == 30 and 30 in ft.info["heldout_losses"]
    finally:
        ft.close()
    assert not src.with_suffix(".txt.ckpt").exists()


def test_a_progress_callback_that_raises_stops_the_run_and_its_exception_comes_back(model, text):
    def stop(done, _total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        headroom.finetune(model, text, lora_rank=2, steps=50, threads=1, progress=stop)


@pytest.mark.parametrize("py_opts, cli_opts", [
    (dict(lora_rank=4, lr=0.0), ["--lora-rank", 4, "--lr", 0]),
    (dict(lora_rank=4, lr=-1e-3), ["--lora-rank", 4, "--lr", -1e-3]),
    (dict(lora_rank=1000), ["--lora-rank", 1000]),
    (dict(full=True, only="heads:9.0"), ["--full", "--only", "heads:9.0"]),
    (dict(lora_targets="q,nope"), ["--lora-rank", 8, "--lora-targets", "q,nope"]),
], ids=["lr-zero", "lr-negative", "rank-too-large", "only-missing-layer", "unknown-target"])
def test_bad_values_raise_the_librarys_message_the_cli_prints(model, text, tmp_path, py_opts, cli_opts):
    with pytest.raises(headroom.Error) as e:
        headroom.finetune(model, text, steps=2, threads=1, **py_opts)
    msg = str(e.value)
    line = cli_error("finetune", MODEL, "--text", text, "--steps", 2, *cli_opts, "--out", tmp_path / "x.gguf")
    print(f"python: {msg}\nCLI:    {line}")
    assert msg and msg in line
    assert not (tmp_path / "x.gguf").exists()


def test_python_only_misuse_is_refused_before_any_work(model, text):
    with pytest.raises(ValueError, match="exclude"):
        headroom.finetune(model, text, full=True, lora_rank=4)
    with pytest.raises(ValueError, match="full=True"):
        headroom.finetune(model, text, only="mlp:0")
    with pytest.raises(TypeError):
        headroom.finetune(model, b"bytes are not a text")
    with pytest.raises(headroom.InvalidArgument, match="empty"):
        headroom.finetune(model, pathlib.Path("/dev/null"))

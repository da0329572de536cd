"""The studies equal the CLI's: headroom.heads gives the heads.json /
layers.json / heads.csv `headroom heads` writes, headroom.prune the same
GGUF and prune.json as `headroom prune`, headroom.eval the same eval.json as
`headroom eval`, KV plans the plan `--kv-from ... --kv-save` writes, convert
the bytes `headroom convert` writes (byte for byte everywhere)."""
import filecmp
import json
import os
import pathlib
import re

import numpy as np
import pytest

import headroom

from conftest import MODEL, assert_bits, cli, cli_error

METHODS = ["ablation", "ablation_kl", "sink", "streaming", "prev_token", "induction", "entropy"]


@pytest.fixture(scope="module")
def lab(model, text):
    r = headroom.heads(model, text, methods=METHODS, tokens=512, seed=3, threads=1)
    yield r
    r.close()


def test_heads_json_layers_json_and_csv_equal_the_cli(lab, lab_dir):
    assert lab.to_json() == (lab_dir / "heads.json").read_text()
    assert lab.layers_json() == (lab_dir / "layers.json").read_text()
    assert lab.to_csv() == (lab_dir / "heads.csv").read_text()
    doc = json.loads(lab.to_json())
    for rec in doc["heads"]:
        l, h = rec["layer"], rec["head"]
        for m in METHODS:
            assert lab.scores[m][l, h] == rec["scores"][m] and lab.ranks[m][l, h] == rec["ranks"][m]
        assert lab.classes[l][h] == rec["classes"]
    assert sorted(lab.methods) == sorted(METHODS) and lab.n_calib_tokens == 512 and lab.window == 256
    best = lab.top("ablation", 1)[0]
    assert lab.scores["ablation"][best[0], best[1]] == np.nanmax(lab.scores["ablation"])


def test_the_head_lab_folder_equals_the_cli(lab, lab_dir, tmp_path):
    out = tmp_path / "lab"
    n = lab.save(out, top=2)
    assert sorted(os.listdir(out)) == sorted(os.listdir(lab_dir)) and n >= 2
    for f in ("heads.json", "layers.json", "heads.csv", "heads_ablation.png", "report.html"):
        assert filecmp.cmp(out / f, lab_dir / f, shallow=False), f
    with pytest.raises(headroom.InvalidArgument, match="input"):
        lab.save(pathlib.Path(MODEL).parent, force=True)  # a folder holding an input: refused


def test_a_score_table_reads_the_lab_as_the_library_does(model, lab, lab_dir):
    with headroom.Scores.read(model, heads=lab_dir / "heads.json", layers=lab_dir / "layers.json") as s, \
            lab.to_scores() as t:
        assert s.methods == t.methods == lab.methods
        for m in METHODS:
            assert np.array_equal(s.head_scores(m), t.head_scores(m), equal_nan=True)
            assert np.array_equal(s.keep_order(m), t.keep_order(m), equal_nan=True)
        assert s.kind("ablation") == "importance" and s.kind("sink") == "trait"
        assert np.array_equal(s.keep_order("sink", invert=True), -s.keep_order("sink"), equal_nan=True)
        assert "block_influence" in s.layer_metrics
        assert s.layer_metric("block_influence").shape == (5,)
        assert s.source.endswith("heads.json") and t.source == "head-lab result"


def test_prune_writes_the_gguf_and_prune_json_of_the_cli(model, lab_dir, tmp_path):
    ref = tmp_path / "cli.gguf"
    cli("prune", MODEL, "--scores", lab_dir / "heads.json", "--by", "ablation", "--heads", "25%", "--out", ref)
    with headroom.prune(model, lab_dir / "heads.json", by="ablation", heads="25%") as p:
        assert p.heads_removed == {"requested": 10, "removed": 10, "reason": ""}
        assert p.config.n_heads != model.config.n_heads and sum(p.config.n_heads) == 30
        out = tmp_path / "py.gguf"
        p.save(out, report=tmp_path / "py.prune.json")
        assert out.read_bytes() == ref.read_bytes()
        want = (tmp_path / "cli.gguf.prune.json").read_text()
        assert (tmp_path / "py.prune.json").read_text().replace(str(out), str(ref)) == want
        assert p.report["layers"] == json.loads(want)["layers"] and p.report["output"] == ""
        with headroom.Model.load(ref, threads=1) as q:
            ids = model.tokenize("Once upon a time, Lily saw a cat.")
            assert_bits(p.logits(ids), q.logits(ids), "pruned in memory vs the CLI's GGUF")


def test_prune_with_mlp_and_layer_drops_equals_the_cli(model, lab, text, tmp_path):
    small = tmp_path / "t.txt"
    small.write_bytes(text.read_bytes()[:20000])
    ref = tmp_path / "cli.gguf"
    cli("prune", MODEL, "--mlp", "30%", "--drop-blocks", 1, "--text", small, "--tokens", 512, "--out", ref)
    with headroom.prune(model, mlp="30%", drop_blocks=1, text=small, tokens=512) as p:
        p.save(tmp_path / "py.gguf", report=True)
        assert (tmp_path / "py.gguf").read_bytes() == ref.read_bytes()
        got = (tmp_path / "py.gguf.prune.json").read_text().replace(str(tmp_path / "py.gguf"), str(ref))
        assert got == (tmp_path / "cli.gguf.prune.json").read_text() and p.config.n_layers == 4


def test_finercut_sublayer_drops_equal_the_cli(model, text, tmp_path):
    small = tmp_path / "t.txt"
    small.write_bytes(text.read_bytes()[:20000])
    ref = tmp_path / "cli.gguf"
    cli("prune", MODEL, "--drop-sublayers", 2, "--iterative", "--text", small, "--tokens", 512, "--out", ref)
    with headroom.prune(model, drop_sublayers=2, iterative=True, text=small, tokens=512) as p:
        p.save(tmp_path / "py.gguf", report=True)
        assert (tmp_path / "py.gguf").read_bytes() == ref.read_bytes()
        steps = json.loads((tmp_path / "cli.gguf.prune.json").read_text())["sublayer_drops"]
        assert [(s["layer"], s["sublayer"]) for s in steps] == [d[:2] for d in p.sublayer_drops]
        assert [s["score"] for s in steps] == pytest.approx([d[2] for d in p.sublayer_drops], rel=1e-14)  # cJSON's 15 digits


def test_eval_json_equals_the_cli(model, lab_dir, text, tmp_path):
    pg = tmp_path / "p.gguf"
    cli("prune", MODEL, "--scores", lab_dir / "heads.json", "--by", "sink", "--invert", "--heads", "10", "--out", pg)
    want_path = tmp_path / "eval.json"
    cli("eval", MODEL, pg, "--text", text, "--windows", 3, "--no-speed", "--passkey", "--passkey-trials", 3,
        "--threads", 1, "--json", want_path)
    with headroom.Model.load(pg, threads=1) as cand:
        got = headroom.eval(model, cand, text, windows=3, speed=False, passkey=True, passkey_trials=3)
    assert got == json.loads(want_path.read_text())
    assert got["candidate"]["path"] == str(pg) and got["text"]["path"] == str(text)


def test_kv_plans_from_scores_equal_the_cli(model, lab_dir, text, tmp_path):
    want = tmp_path / "cli.plan"
    gen = cli("generate", MODEL, "--prompt", "Once", "-n", 1, "--kv-from", lab_dir / "heads.json",
              "--retrieval-fraction", 0.5, "--kv-window", 16, "--kv-save", want)
    plan = headroom.kv_plan_from_scores(model, lab_dir / "heads.json", fraction=0.5, window=16)
    plan.save(tmp_path / "py.plan")
    assert (tmp_path / "py.plan").read_text() == want.read_text()
    assert plan.n_reduced == 10 and plan[0, 0]["kind"] in ("full", "streaming")
    small = tmp_path / "t.txt"
    small.write_bytes(text.read_bytes()[:4000])
    out = cli("ppl", MODEL, "--text", small, "--ctx", 128, "--kv", want, "--threads", 1).stdout
    with model.with_kv_plan(plan) as v:
        r = v.perplexity(small, ctx=128)
        assert f"{r['ppl']:.4f} +/-" in out
        assert f"kv cache:   {v.kv_bytes()} bytes allocated" in gen.stderr  # the model's context, as generate
        assert v.kv_bytes() < model.kv_bytes()
    loaded = headroom.KvPlan.load(want, model)
    assert loaded.policies() == plan.policies()
    full = headroom.KvPlan.full(model)
    full.set(1, 2, "heavy", budget=32, window=16)
    assert full[1, 2] == {"kind": "heavy", "sink": 0, "window": 16, "budget": 32} and full.n_reduced == 1


def test_convert_writes_the_bytes_of_the_cli(tmp_path):
    cli("convert", MODEL, tmp_path / "cli.gguf", "--to", "gguf")
    headroom.convert(MODEL, tmp_path / "py.gguf", to="gguf")
    assert (tmp_path / "py.gguf").read_bytes() == (tmp_path / "cli.gguf").read_bytes()
    cli("convert", MODEL, tmp_path / "cli-hf", "--to", "hf", "--dtype", "bf16")
    headroom.convert(MODEL, tmp_path / "py-hf", to="hf", dtype="bf16")
    files = sorted(os.listdir(tmp_path / "cli-hf"))
    assert files == sorted(os.listdir(tmp_path / "py-hf")) and "model.safetensors" in files
    for f in files:
        assert filecmp.cmp(tmp_path / "cli-hf" / f, tmp_path / "py-hf" / f, shallow=False), f
    with pytest.raises(headroom.InvalidArgument, match=re.escape(str(MODEL))):
        headroom.convert(MODEL, MODEL, force=True)  # never replaces its input


def test_methods_list_the_library_registry():
    ids = [m["id"] for m in headroom.methods()]
    out = cli("heads", "--list").stdout
    assert ids == re.findall(r"^(\w+)\s", out, re.M) and "ablation" in ids
    assert all(m["higher"].startswith("more ") for m in headroom.methods())


def test_an_inexact_amount_is_a_logged_warning_or_with_strict_an_error(model, lab_dir, caplog, tmp_path):
    want = cli_error("prune", MODEL, "--scores", lab_dir / "heads.json", "--by", "ablation", "--heads", "2.5%",
                          "--out", tmp_path / "p.gguf", "--strict")
    with pytest.raises(headroom.RangeError) as e:
        headroom.prune(model, lab_dir / "heads.json", by="ablation", heads="2.5%", strict=True)
    assert str(e.value) == want
    with caplog.at_level("WARNING", logger="headroom"):
        with headroom.prune(model, lab_dir / "heads.json", by="ablation", heads="2.5%") as p:
            r = p.heads_removed
    assert r["removed"] != r["requested"] and r["reason"]
    assert any(r["reason"] in rec.getMessage() for rec in caplog.records)

"""Circuits from Python equal the CLI's: headroom.patch gives the patch.json
`headroom patch` writes byte for byte (name-recall pairs, a pairs file,
path patching, knockout, noising, masked and mean-ablated heads), its NumPy
arrays equal the JSON's numbers, Pairs give the CLI's pairs.jsonl; and
headroom.eval with heads masked (mask_heads / mean_heads / random_heads,
recall=True) gives the CLI's eval.json."""
import json
import math

import numpy as np
import pytest

import headroom

from conftest import MODEL, cli, cli_error

SPEC = ("--what", "heads,resid,layers", "--path", "* -> logits", "--knockout", "4.*: -1 -> 1..-2")


@pytest.fixture(scope="module")
def recall_run(tmp_path_factory, text):
    d = tmp_path_factory.mktemp("patch") / "a"
    cli("patch", MODEL, "--name-recall", text, "--n-pairs", 3, *SPEC, "--threads", 1, "--out", d)
    return d


def same_numbers(arr, rows, what):
    """arr (NumPy, NaN for none) equals a JSON matrix (null for none) to the JSON's printed precision."""
    want = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
    assert arr.shape == want.shape, what
    assert np.array_equal(np.isnan(arr), np.isnan(want)), what
    d = float(np.nanmax(np.abs(arr - want)))
    print(f"{what}: max |array - patch.json| = {d:.3g}")
    assert d <= 1e-12 * max(1.0, float(np.nanmax(np.abs(want)))), what


def test_patch_on_name_recall_pairs_writes_the_cli_patch_json(model, text, recall_run):
    pairs = headroom.Pairs.name_recall(model, text, n=3)
    assert pairs.to_jsonl() == (recall_run / "pairs.jsonl").read_text()
    r = headroom.patch(model, pairs, what=["heads", "resid", "layers"], path="* -> logits",
                       knockout="4.*: -1 -> 1..-2", threads=1)
    with r, pairs:
        want = (recall_run / "patch.json").read_text()
        assert r.to_json() == want
        print(f"patch.json: {len(want)} bytes equal; {r}")
        assert r.heads.shape == (5, 8) and r.resid.shape == (5, r.n_positions) and r.attn is not None
        assert r.path_heads.shape == (5, 8) and r.knockout_heads is None and r.mlp is None
        assert r.knockout == "4.*: -1 -> 1..-2" and 0 <= r.knockout_value <= 2
        assert r.n_pairs == 3 and r.dla is not None and r.lens is not None and r.forward_passes > 0
        # DLA's parts sum to the logit difference (up to float rounding; circuits.h)
        parts = r.dla["embed"] + np.nansum(r.dla["heads"]) + np.sum(r.dla["mlp"])
        print(f"DLA: total {r.dla['total']:.6f}, sum of parts {parts:.6f}")
        assert math.isclose(parts, r.dla["sum"], rel_tol=1e-9, abs_tol=1e-9)
        assert abs(r.dla["sum"] - r.dla["total"]) <= 1e-3 * max(1.0, abs(r.dla["total"]))
        doc = json.loads(want)
        same_numbers(r.heads, doc["patching"]["heads"]["values"], "heads")
        same_numbers(r.resid, doc["patching"]["resid"]["values"], "resid")
        same_numbers(r.attn, doc["patching"]["layers"]["values"], "layers")
        same_numbers(r.path_heads, doc["path"]["senders"]["values"], "path senders")
        same_numbers(r.dla["heads"], doc["dla"]["heads"], "DLA heads")
        assert doc["knockout"]["value"] == pytest.approx(r.knockout_value, rel=1e-12)
        assert doc["pairs"]["count"] == r.n_pairs and r.metric == "logit-diff" and r.direction == "denoise"


def test_patch_from_a_pairs_file_with_noising_and_masked_heads_equals_the_cli(model, recall_run, tmp_path):
    f = recall_run / "pairs.jsonl"
    args = ("--what", "heads,mlp", "--metric", "prob", "--direction", "noise", "--mask-heads", "4.4,2.*",
            "--path", "0.1,1.2 -> 3.0q,4.mlp")
    cli("patch", MODEL, "--pairs", f, *args, "--threads", 1, "--out", tmp_path / "b")
    with headroom.patch(model, f, what="heads,mlp", metric="prob", direction="noise", mask_heads=[(4, 4), (2, "*")],
                        path="0.1,1.2 -> 3.0q,4.mlp", threads=1) as r:
        assert r.to_json() == (tmp_path / "b" / "patch.json").read_text()
        assert r.path_heads is None and not math.isnan(r.path_value) and r.direction == "noise"


def test_patch_with_mean_ablated_heads_equals_the_cli(model, text, tmp_path):
    cli("patch", MODEL, "--name-recall", text, "--n-pairs", 2, "--what", "heads", "--mean-heads", "3.1,3.2",
        "--no-lens", "--threads", 1, "--out", tmp_path / "c")
    with headroom.Pairs.name_recall(model, text, n=2) as pairs, \
            headroom.patch(model, pairs, what="heads", mean_heads="3.1,3.2", lens=False, threads=1) as r:
        assert r.to_json() == (tmp_path / "c" / "patch.json").read_text()
        assert r.lens is None


def test_pairs_from_ids_give_the_same_result_as_their_jsonl(model, recall_run):
    rows = [json.loads(x) for x in (recall_run / "pairs.jsonl").read_text().splitlines()]
    with headroom.Pairs.from_ids(rows) as ps, headroom.Pairs.read(model, recall_run / "pairs.jsonl") as pf:
        assert len(ps) == len(pf) == 3 and ps.to_jsonl() == pf.to_jsonl()
        assert list(ps[0]["clean_ids"]) == rows[0]["clean_ids"] and ps[-1]["wrong_id"] == rows[2]["wrong_id"]
        a = headroom.patch(model, ps, what="heads", threads=1)
        b = headroom.patch(model, [(r["clean_ids"], r["corrupt_ids"], r["answer_id"], r["wrong_id"]) for r in rows],
                           what="heads", threads=2)
        assert np.array_equal(a.heads, b.heads, equal_nan=True) and a.clean == b.clean


def test_patch_errors_are_the_cli_errors(model, recall_run):
    f = recall_run / "pairs.jsonl"
    for kw, args in (({"path": "* -> 2.1x"}, ("--path", "* -> 2.1x")),
                     ({"knockout": "*: last -> 1"}, ("--knockout", "*: last -> 1")),
                     ({"what": "heads2"}, ("--what", "heads2")),
                     ({"metric": "acc"}, ("--metric", "acc")),
                     ({"mask_heads": "9.9"}, ("--mask-heads", "9.9"))):
        want = cli_error("patch", MODEL, "--pairs", f, *args, "--out", recall_run.parent / "never")
        with pytest.raises(headroom.Error) as e:
            headroom.patch(model, f, **kw)
        assert str(e.value) in want, (str(e.value), want)
    with pytest.raises(headroom.FormatError, match="line 1"):
        headroom.patch(model, '{"clean": "a b", "corrupt": "a", "answer": " c", "wrong": " d"}\n')
    with pytest.raises(ValueError, match="same length"):
        headroom.Pairs.from_ids([([1, 2, 3], [1, 2], 4, 5)])
    with pytest.raises(ValueError, match="calibration text"):
        headroom.patch(model, f, mean_heads="1.1")
    with pytest.raises(TypeError, match="pairs must be"):
        headroom.patch(model, 3)


@pytest.mark.parametrize("opts", [
    (("--mask-heads", "4.0,4.1", "--recall", "--recall-items", "20"),
     {"mask_heads": [(4, 0), (4, 1)], "recall": True, "recall_items": 20}),
    (("--mean-heads", "1.*", "--calib", "CALIB"), {"mean_heads": "1.*", "calib": "CALIB"}),
    (("--random-heads", "3", "--seed", "5"), {"random_heads": 3, "seed": 5}),
], ids=["mask_heads + recall", "mean_heads with calib", "random_heads"])
def test_eval_with_heads_masked_equals_the_cli_eval_json(model, text, tmp_path, opts):
    args, kw = opts
    calib = tmp_path / "calib.txt"
    calib.write_text(text.read_text()[:6000])
    args = tuple(str(calib) if a == "CALIB" else a for a in args)
    kw = {k: (calib if v == "CALIB" else v) for k, v in kw.items()}
    out = tmp_path / "eval.json"
    cli("eval", MODEL, "--text", text, "--windows", 2, "--no-speed", "--threads", 1, *args, "--json", out)
    got = headroom.eval(model, None, text, windows=2, speed=False, threads=1, **kw)
    want = json.loads(out.read_text())
    assert got == want
    if "recall" in kw:
        assert "recall" in json.dumps(got)


def test_eval_without_a_candidate_or_a_mask_is_an_error(model, text):
    with pytest.raises(ValueError, match="needs a candidate"):
        headroom.eval(model, None, text)
    with pytest.raises(ValueError, match="calib is for mean_heads"):
        headroom.eval(model, None, text, mask_heads="1.1", calib="x")


@pytest.mark.parametrize("opts", [
    (("--mask-heads", "4.0,4.1", "--max-docs", "6"), {"mask_heads": "4.0,4.1", "max_docs": 6}),
    (("--mean-heads", "2.*", "--ctx", "64", "--max-docs", "4"), {"mean_heads": [(2, "*")], "ctx": 64, "max_docs": 4}),
], ids=["mask_heads", "mean_heads (calibrated on the text)"])
def test_influence_writes_the_cli_jsonl(model, text, tmp_path, opts):
    args, kw = opts
    docs = tmp_path / "docs.txt"
    docs.write_text("\n\n".join(text.read_text()[:12000].split("\n")[:40]))
    out = tmp_path / "influence.jsonl"
    cli("influence", MODEL, "--text", docs, "--threads", 1, "--out", out, *args)
    r = headroom.influence(model, docs, threads=1, **kw)
    assert r.to_jsonl() == out.read_text()
    lines = [json.loads(x) for x in out.read_text().splitlines()[1:]]
    assert len(r) == len(lines) == kw["max_docs"] and list(r.doc) == [d["doc"] for d in lines]
    assert np.allclose(r.influence, (r.loss_masked - r.loss_base) / r.loss_base, rtol=1e-12)
    print(r)


def test_influence_needs_heads(model, text):
    with pytest.raises(ValueError, match="heads to mask"):
        headroom.influence(model, text)


def test_closed_objects_and_progress_errors_raise_never_crash(model, recall_run):
    f = recall_run / "pairs.jsonl"
    ps = headroom.Pairs.read(model, f)
    with pytest.raises(IndexError):
        ps[3]
    r = headroom.patch(model, ps, what="heads", lens=False, dla=False)
    assert r.dla is None and r.lens is None
    ps.close()
    ps.close()
    with pytest.raises(headroom.InvalidArgument, match="closed"):
        headroom.patch(model, ps)
    with pytest.raises(headroom.InvalidArgument, match="closed"):
        len(ps)
    r.close()
    with pytest.raises(headroom.InvalidArgument, match="closed"):
        r.to_json()
    assert r.heads.shape == (5, 8)  # the arrays are copies: still readable
    seen = []

    def stop(done, total):
        seen.append((done, total))
        if done >= 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        headroom.patch(model, f, what="heads", progress=stop)
    assert len(seen) == 3 and seen[-1][1] > 3
    m = headroom.Model.load(MODEL, threads=1)
    m.close()
    for call in (lambda: headroom.patch(m, f), lambda: m.grad([1, 2, 3]), lambda: headroom.influence(m, "a b")):
        with pytest.raises(headroom.InvalidArgument, match="closed"):
            call()


def test_conflict_pairs_and_ph3_scores_equal_the_cli(model, text, tmp_path):
    """Pairs.conflict + patch(path="* -> logits") + ph3_json() give the CLI's
    pairs.jsonl and ph3.json (`headroom patch --conflict`) byte for byte."""
    d = tmp_path / "c"
    cli("patch", MODEL, "--conflict", text, "--n-pairs", 6, "--seed", 3, "--what", "none", "--threads", 1,
        "--out", d)
    with headroom.Pairs.conflict(model, text, n=6, seed=3) as pairs:
        assert pairs.to_jsonl() == (d / "pairs.jsonl").read_text()
        with headroom.patch(model, pairs, what="none", path="* -> logits", threads=1) as r:
            want = (d / "ph3.json").read_text()
            assert r.ph3_json() == want
            doc = json.loads(want)
            assert (r.clean_top_answer, r.clean_top_wrong) == (doc["pairs"]["clean_top_answer"],
                                                               doc["pairs"]["clean_top_wrong"])
            print(f"ph3.json: {len(want)} bytes equal; context {r.clean_top_answer}, memory {r.clean_top_wrong} of 6")

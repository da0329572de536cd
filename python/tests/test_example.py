"""The example python/examples/top_heads.py runs: it prints the ten heads
ablation ranks highest — the same as headroom.heads gives — and draws the
top head's pattern (with matplotlib when installed, else as text, saying
so)."""
import importlib.util
import os
import re
import subprocess
import sys

import headroom

from conftest import MODEL, REPO, TEXT, require


def test_the_example_prints_the_top_heads_and_their_pattern(tmp_path, model):
    require(MODEL, TEXT)
    out = tmp_path / "pattern.png"
    r = subprocess.run([sys.executable, str(REPO / "python" / "examples" / "top_heads.py"), str(MODEL), "--text",
                        str(TEXT), "--out", str(out), "--threads", "1"], capture_output=True, text=True,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    printed = re.findall(r"^\s+(\d+)\.(\d+)\s+(-?[\d.]+)", r.stdout, re.M)
    lab = headroom.heads(model, TEXT, methods=["ablation", "sink", "prev_token", "induction"], tokens=512)
    assert [(int(l), int(h)) for l, h, _ in printed] == [(l, h) for l, h, _ in lab.top("ablation", 10)]
    if importlib.util.find_spec("matplotlib"):
        assert out.stat().st_size > 1000 and "wrote head" in r.stdout
    else:
        assert "matplotlib is not installed" in r.stdout and not out.exists()
        assert len(re.findall(r"->", r.stdout)) == model.tokenize(
            "Lily saw a big dog. The dog was happy. Lily and the dog played.").size

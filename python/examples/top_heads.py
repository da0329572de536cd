#!/usr/bin/python3
"""The most important attention heads of a model, by exact ablation, and
the attention pattern of the top one.

    /usr/bin/python3 python/examples/top_heads.py [MODEL] [--text FILE] [--out PNG]

Loads stories260K (or MODEL), runs the head lab's ablation score (the loss
increase when one head is removed, on 512 calibration tokens of the text),
prints the ten heads whose removal hurts most with their classes, and
draws the top head's attention pattern on a short prompt, token labels on
both axes — with matplotlib (Debian: python3-matplotlib) when it is
installed, else as text.
"""
import argparse
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
if (REPO / "python" / "headroom").is_dir() and not os.environ.get("HEADROOM_TEST_INSTALLED"):
    sys.path.insert(0, str(REPO / "python"))  # run from a checkout without installing

import numpy as np  # noqa: E402

import headroom  # noqa: E402

SHARED = REPO.parent / "shared"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", nargs="?", default=os.environ.get("HEADROOM_MODEL",
                                                               SHARED / "models/stories260K/stories260K.bin"))
    ap.add_argument("--text", default=SHARED / "data/text/tinystories_val.txt", type=pathlib.Path)
    ap.add_argument("--prompt", default="Lily saw a big dog. The dog was happy. Lily and the dog played.")
    ap.add_argument("--out", default="top_head_pattern.png", help="where the pattern picture goes")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()

    with headroom.Model.load(a.model, threads=a.threads) as m:
        print(m)
        lab = headroom.heads(m, a.text, methods=["ablation", "sink", "prev_token", "induction"], tokens=512)
        print(f"\nheads whose removal raises the loss most ({lab.n_calib_tokens} calibration tokens):")
        print(f"{'head':>6} {'loss increase':>14}  classes")
        for l, h, score in lab.top("ablation", 10):
            print(f"{l:>3}.{h:<2} {score:>14.4f}  {', '.join(lab.classes[l][h]) or '-'}")

        l, h, _ = lab.top("ablation", 1)[0]
        ids = m.tokenize(a.prompt)
        labels = m.to_str_tokens(ids)
        _, cache = m.run_with_cache(ids, names=["pattern"], layers=[l])
        pattern = cache["pattern", l][h]  # (queries, keys)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print(f"\nmatplotlib is not installed (Debian: python3-matplotlib): no picture; "
                  f"head {l}.{h}'s strongest key per query instead:")
            for q, row in enumerate(pattern):
                k = int(np.argmax(row[:q + 1]))
                print(f"  {labels[q]!r:>12} -> {labels[k]!r:<12} {row[k]:.2f}")
            return 0
        fig, ax = plt.subplots(figsize=(8, 7))
        ax.imshow(pattern, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        ax.set_title(f"head {l}.{h} of {pathlib.Path(str(a.model)).name} (top by ablation)")
        fig.tight_layout()
        fig.savefig(a.out, dpi=100)
        print(f"\nwrote head {l}.{h}'s attention pattern to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

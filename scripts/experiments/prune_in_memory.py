"""Prunes a model in memory with the Python package and runs a forward on
the result: the times and the peak RSS of a study that keeps the pruned
model (docs/RESULTS.md §5, "A model built in memory holds one copy").

    /usr/bin/time -v /usr/bin/python3 scripts/experiments/prune_in_memory.py MODEL [--heads 25%] [--threads 2]
"""
import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import headroom  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("model")
ap.add_argument("--heads", default="25%", help="query heads removed at random (default 25%%)")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--tokens", type=int, default=64, help="tokens of the forward (default 64)")
a = ap.parse_args()
t0 = time.time()
m = headroom.Model.load(a.model, threads=a.threads)
p = headroom.prune(m, by="random", heads=a.heads, seed=1)
m.close()
t1 = time.time()
p.logits(list(range(1, a.tokens + 1)))
t2 = time.time()
p.close()
print(f"load + prune {t1 - t0:.1f} s, first logits ({a.tokens} tokens) {t2 - t1:.1f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} kB")

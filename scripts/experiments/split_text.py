#!/usr/bin/python3
"""The training / evaluation split of docs/RESULTS.md §10 (learn.sh,
recovery_seeds.sh): TEXT cut at its last line break before 90 % into
WORK/train.txt (training, calibration, recovery) and WORK/heldout.txt
(evaluation only).

usage: split_text.py TEXT WORK"""
import sys

d = open(sys.argv[1], "rb").read()
cut = d.rfind(b"\n", 0, int(len(d) * 0.9)) + 1
open(sys.argv[2] + "/train.txt", "wb").write(d[:cut])
open(sys.argv[2] + "/heldout.txt", "wb").write(d[cut:])
print("train.txt %d bytes, heldout.txt %d bytes" % (cut, len(d) - cut))

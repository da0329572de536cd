#!/usr/bin/env bash
# Sets up, builds and runs the main job on the default model
# (../shared/models/stories260K): describe it, generate, analyse every
# attention head (report in heads-out/report.html), measure perplexity.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
text=../shared/data/text/tinystories_val.txt
./build/headroom info --no-tensors
./build/headroom generate --prompt "Once upon a time" -n 80 --temp 0
./build/headroom heads --text "$text" --tokens 1024 --methods all --out heads-out  # stories260K: every method in seconds
echo "head-lab report: $(pwd)/heads-out/report.html"
./build/headroom ppl --text "$text" --ctx 512 --protocol llama.cpp

#!/usr/bin/env bash
# Sets up, builds and runs the main job on the default model
# (../shared/models/stories260K): describe it, generate, measure perplexity.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
./build/headroom info
./build/headroom generate --prompt "Once upon a time" -n 80 --temp 0
./build/headroom ppl --text ../shared/data/text/tinystories_val.txt --ctx 512 --protocol llama.cpp

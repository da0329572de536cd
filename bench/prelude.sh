# Shared start of the head-lab benchmark scripts (sourced, not run): given
# $build, $shared and the tools in BENCH_TOOLS, checks that the Release tools
# exist, unsets OpenBLAS tuning variables for the benchmark's own commands,
# and makes a scratch folder $T (removed on exit) holding text.txt, the first
# BENCH_TEXT_BYTES bytes of tinystories_val.txt, and ids.txt, its token ids
# through stories260K's tok512.bin (valid ids of the random SmolLM-shape
# model's vocabulary too). Sets $tok to that tokenizer and defines
# bench_each_model.
for tool in $BENCH_TOOLS; do
    [[ -x $build/$tool ]] || { echo "bench: $build/$tool missing (build the Release tree first)" >&2; exit 1; }
done
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
    if [[ -n ${!v+x} ]]; then echo "# unset $v (was '${!v}')"; unset "$v"; fi
done
tok=$shared/models/stories260K/tok512.bin
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
head -c "$BENCH_TEXT_BYTES" "$shared/data/text/tinystories_val.txt" >"$T/text.txt"
"$build/headroom" tokenize "$tok" --text "$T/text.txt" >"$T/ids.txt"

# Runs "$1 MODEL LABEL WINDOW N_WINDOWS" for each model named in $2:
# stories (stories260K, 4 windows of 256 tokens) and smollm (the random
# SmolLM-135M shape, generated into $smol when missing, 1 window of 128).
bench_each_model() {
    local m
    for m in $2; do
        case $m in
            stories) "$1" "$shared/models/stories260K/stories260K.bin" stories260K 256 4 ;;
            smollm)
                [[ -f $smol ]] || "$build/hr_make_random" --preset smollm-135m --seed 1 "$smol"
                "$1" "$smol" smollm135m-random 128 1 ;;
            *) echo "bench: unknown model '$m'" >&2; exit 1 ;;
        esac
    done
}

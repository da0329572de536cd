# Shared start of the stories260K experiment scripts (sourced, not run):
# given $work, $build and $shared, empties $work/commands.txt and defines
#   run CMD...    runs CMD quietly, recording it in commands.txt with the
#                 paths shortened (../shared, WORK, BUILD);
#   split_text    writes the text split of the pruning experiments:
#                 WORK/calib.txt = bytes [0, 400000) of tinystories_val.txt
#                 (scores, calibration), WORK/heldout.txt = bytes
#                 [600000, 700000) with the first partial line dropped
#                 (evaluation), and records how in commands.txt.
: >"$work/commands.txt"

run() {
    echo "$*" | sed -e "s#$shared#../shared#g" -e "s#$work#WORK#g" -e "s#$build#BUILD#g" >>"$work/commands.txt"
    "$@" >/dev/null
}

split_text() {
    local text=$shared/data/text/tinystories_val.txt
    head -c 400000 "$text" >"$work/calib.txt"
    dd if="$text" iflag=skip_bytes,count_bytes skip=600000 count=100000 status=none | sed 1d >"$work/heldout.txt"
    echo "# head -c 400000 tinystories_val.txt > WORK/calib.txt" >>"$work/commands.txt"
    echo "# dd if=tinystories_val.txt iflag=skip_bytes,count_bytes skip=600000 count=100000 | sed 1d > WORK/heldout.txt" \
        >>"$work/commands.txt"
}

# What a segment of tools/device/jobs/geco.sh brings back under $OUT/r, per seed S:
# results-seedS.json when its run is done (with its evaluation's contact sheets as
# eval-seedS.tar), else results-seedS.partial.json if the run has written it; and the log. A
# teacher the seed trained (TRAIN_TEACHER) comes back once packed: its record and sample sheet
# as teacher-seedS.json / .png, and the pack as teacher-seedS.safetensors (a compact Zero123++
# is 15.7 MB, under the 16 MiB a file may be). The trained models (fp16 shards) stay there.
root=${GECO_ROOT:-/tmp/geco}
g_root=${JOB_ROOT:-/tmp/g}
for o in "$root"/seed*; do
    [ -d "$o" ] || continue
    s=${o##*/}
    if [ -f "$o/results.json" ]; then
        cp "$o/results.json" "$OUT/r/results-$s.json"
        [ -d "$o/eval" ] && tar -cf "$OUT/r/eval-$s.tar" -C "$o" eval
    elif [ -f "$o/results.partial.json" ]; then
        cp "$o/results.partial.json" "$OUT/r/results-$s.partial.json"
    fi
    t="$o/teacher/out"
    if [ -f "$t/results.json" ]; then
        cp "$t/results.json" "$OUT/r/teacher-$s.json"
        [ -f "$t/zero123plus-samples.png" ] && cp "$t/zero123plus-samples.png" "$OUT/r/teacher-$s.png"
        [ -f "$t/zero123plus.safetensors" ] && cp "$t/zero123plus.safetensors" "$OUT/r/teacher-$s.safetensors"
    fi
done
cp "$g_root/job.log" "$OUT/r/" 2>/dev/null
true

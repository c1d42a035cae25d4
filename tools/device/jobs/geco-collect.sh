# What a segment of tools/device/jobs/geco.sh brings back under $OUT/r, per seed S:
# results-seedS.json when its run is done (with its evaluation's contact sheets as
# eval-seedS.tar), else results-seedS.partial.json if the run has written it; and the log. The
# trained models (fp16 shards) stay on the machine.
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
done
cp "$g_root/job.log" "$OUT/r/" 2>/dev/null
true

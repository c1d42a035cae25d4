# What a segment of tools/device/jobs/dd3g.sh brings back under $OUT/r: results.json when the
# run is done, else every run's record as of its last evaluation (work/runs as runs.tar, which
# scripts/summarise_runs.py reads once unpacked), and the log.
d_root=${DD3G_ROOT:-/tmp/d}
g_root=${JOB_ROOT:-/tmp/g}
if [ -f "$d_root/out/results.json" ]; then
    cp "$d_root/out/results.json" "$OUT/r/"
elif [ -d "$d_root/out/work/runs" ]; then
    tar -cf "$OUT/r/runs.tar" -C "$d_root/out/work" runs
fi
cp "$g_root/job.log" "$OUT/r/" 2>/dev/null
true

# What a segment of tools/device/jobs/dd3g.sh brings back under $OUT/r: results.json when the
# run is done, else every run's record as of its last evaluation (work/runs as runs.tar, which
# scripts/summarise_runs.py reads once unpacked), and the log.
# BRING (comma-separated variant names, at most 5): with results.json, also those variants'
# checkpoints (the lease's first seed, fp16), one tar each as ckpt-1.tar, ckpt-2.tar, ... (a
# variant's name may hold '+' and '=', which a file brought back may not). A tar over the
# 16 MiB a file may have is left out and named in the output.
d_root=${DD3G_ROOT:-/tmp/d}
g_root=${JOB_ROOT:-/tmp/g}
if [ -f "$d_root/out/results.json" ]; then
    cp "$d_root/out/results.json" "$OUT/r/"
    i=0
    IFS=, read -ra bring <<< "${BRING:-}"
    for name in "${bring[@]}"; do
        [ -n "$name" ] || continue
        i=$((i + 1))
        if [ "$i" -gt 5 ]; then
            echo "collect: BRING names more than 5 checkpoints; $name is left out"
            continue
        fi
        if [ ! -d "$d_root/out/checkpoints/$name" ]; then
            echo "collect: no checkpoint of $name (is it a variant of this lease?)"
            continue
        fi
        tar -cf "$OUT/r/ckpt-$i.tar" -C "$d_root/out/checkpoints" "$name"
        if [ "$(stat -c %s "$OUT/r/ckpt-$i.tar")" -gt $((16 * 1024 * 1024)) ]; then
            rm "$OUT/r/ckpt-$i.tar"
            echo "collect: the checkpoint of $name is over 16 MiB; left out"
        else
            echo "collect: ckpt-$i.tar holds $name"
        fi
    done
elif [ -d "$d_root/out/work/runs" ]; then
    tar -cf "$OUT/r/runs.tar" -C "$d_root/out/work" runs
fi
cp "$g_root/job.log" "$OUT/r/" 2>/dev/null
true

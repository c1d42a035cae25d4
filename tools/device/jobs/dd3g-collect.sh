# What a segment of tools/device/jobs/dd3g.sh brings back under $OUT/r: results.json when the
# run is done, else every run's record as of its last evaluation (work/runs as runs.tar, which
# scripts/summarise_runs.py reads once unpacked), and the log.
# BRING (comma-separated variant names, at most 5; commas inside a probe's brackets stay in it): with results.json, also those variants'
# checkpoints (the lease's first seed, fp16), one tar each as ckpt-1.tar, ckpt-2.tar, ... (a
# variant's name may hold '+' and '=', which a file brought back may not). A tar over the
# 16 MiB a file may have comes back in 16 MiB parts, ckpt-N.tar.0, ckpt-N.tar.1, ... (here:
# cat ckpt-N.tar.* > ckpt-N.tar) while the 8 files and 64 MiB a call brings back allow them
# (job.log's place kept); otherwise it is left out and named in the output.
d_root=${DD3G_ROOT:-/tmp/d}
g_root=${JOB_ROOT:-/tmp/g}
if [ -f "$d_root/out/results.json" ]; then
    cp "$d_root/out/results.json" "$OUT/r/"
    i=0
    # shellcheck source=tools/device/jobs/variant-names.sh
    source "$(dirname "${BASH_SOURCE[0]}")/variant-names.sh"
    split_variants "${BRING:-}"
    bring=("${variants[@]}")
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
        size=$(stat -c %s "$OUT/r/ckpt-$i.tar")
        if [ "$size" -le $((16 * 1024 * 1024)) ]; then
            echo "collect: ckpt-$i.tar holds $name"
            continue
        fi
        parts=$(( (size + 16 * 1024 * 1024 - 1) / (16 * 1024 * 1024) ))
        others=$(find "$OUT/r" -maxdepth 1 -type f ! -name "ckpt-$i.tar" | wc -l)
        held=$(find "$OUT/r" -maxdepth 1 -type f ! -name "ckpt-$i.tar" -printf '%s\n' \
            | awk '{s += $1} END {print s + 0}')
        if [ $((others + parts + 1)) -le 8 ] && [ $((held + size)) -le $((63 * 1024 * 1024)) ]; then
            split -b 16M -d -a 1 "$OUT/r/ckpt-$i.tar" "$OUT/r/ckpt-$i.tar."
            rm "$OUT/r/ckpt-$i.tar"
            echo "collect: ckpt-$i.tar holds $name in $parts parts (cat ckpt-$i.tar.* > ckpt-$i.tar)"
        else
            rm "$OUT/r/ckpt-$i.tar"
            echo "collect: the checkpoint of $name ($size bytes) does not fit what a call brings back (8 files, 64 MiB); left out"
        fi
    done
elif [ -d "$d_root/out/work/runs" ]; then
    tar -cf "$OUT/r/runs.tar" -C "$d_root/out/work" runs
fi
cp "$g_root/job.log" "$OUT/r/" 2>/dev/null
true

# What the next lease of tools/device/jobs/bench-priors.sh resumes from, under $OUT/r: Inductor's
# autotune timings so far (autotune/<hash>; copy them into .autotune/ and carry it), how many
# operations they hold, and the job's log.
cache=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor-cache}/cache
mkdir -p "$OUT/r/autotune"
for f in "$cache"/*; do [ -f "$f" ] && cp "$f" "$OUT/r/autotune/"; done
python3 tools/device/jobs/autotune_cache.py "$cache"
cp "${JOB_ROOT:-/tmp/g}/job.log" "$OUT/r/" 2>/dev/null
true

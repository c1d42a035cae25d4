# benchmarks/priors.py as a detached job (tools/device/segment.sh runs this file through job.sh),
# for runs longer than one device command: the autotuned compile of the paper-size Zero123++
# alone outlasted a 390 s call (session 59) and a whole session's device time (session 62).
# Environment:
#   BENCH_ARGS  the benchmark's flags (default: every prior, eager and graphed)
# Inductor's caches live in TORCHINDUCTOR_CACHE_DIR (default /tmp/inductor-cache). Its autotune
# timings (cache/<hash>: one JSON file per GPU kind and CUDA and Triton version) are written
# after each operation is tuned, and an operation whose every candidate is in them is neither
# compiled nor benchmarked again. bench-priors-collect.sh brings that file back; carried in the
# next lease as .autotune/<hash>, it is put back here first, so max-autotune resumes where the
# last lease stopped instead of starting over. Its table is the end of job.log.
# shellcheck disable=SC2086  # the flags split into words on purpose
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor-cache}
mkdir -p "$TORCHINDUCTOR_CACHE_DIR/cache"
for f in .autotune/*; do
    [ -f "$f" ] && cp "$f" "$TORCHINDUCTOR_CACHE_DIR/cache/" && echo "autotune: carried $(basename "$f")"
done
python3 tools/device/jobs/autotune_cache.py "$TORCHINDUCTOR_CACHE_DIR/cache"
python3 benchmarks/priors.py $BENCH_ARGS

# benchmarks/priors.py as a detached job (tools/device/segment.sh runs this file through job.sh),
# for runs longer than one device command: the autotuned compile of the paper-size Zero123++
# alone outlasted a 390 s call (session 59). Environment:
#   BENCH_ARGS  the benchmark's flags (default: every prior, eager and graphed)
# Its table is the end of job.log, which wait.sh brings back when the job is done.
# shellcheck disable=SC2086  # the flags split into words on purpose
python3 benchmarks/priors.py $BENCH_ARGS

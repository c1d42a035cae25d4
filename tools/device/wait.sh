#!/usr/bin/env bash
# Follows the detached job for up to SECONDS (default 400), prints the log's tail, and copies
# the logs and every file named by $RESULTS (globs) into $OUT/r when the job is done or FINAL=1.
# Exits 3 at once when this machine has no job: the earlier machine was given back (idle for
# more than 30 s) and this call started a fresh one, whose wait would only burn device time.
secs=${1:-400}
g=${JOB_ROOT:-/tmp/g}
if [ ! -e "$g/t0" ]; then
    echo "no job on this machine: the machine running it was given back; start it again" >&2
    exit 3
fi
end=$(( $(date +%s) + secs ))
while [ ! -e "$g/done" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 2; done
echo "elapsed $(( $(date +%s) - $(cat "$g/t0") )) s; rc $(cat "$g/rc" 2>/dev/null || echo running)"
tail -c 3000 "$g/job.log"; tail -2 "$g/smi.log"
if [ -e "$g/done" ] || [ -n "$FINAL" ]; then
    mkdir -p "$OUT/r"
    cp "$g"/*.log "$OUT/r/" 2>/dev/null
    for f in $RESULTS; do [ -f "$f" ] && cp "$f" "$OUT/r/"; done
    ls -la "$OUT/r"
fi

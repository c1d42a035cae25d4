#!/usr/bin/env bash
# One segment of a job longer than one device command, complete in itself whether or not the
# machine of the previous segment is still there:
#   [FIRST=1] [RESUME_FILE=PATH] bash tools/device/segment.sh CMD_FILE SECONDS [COLLECT_FILE]
# If this machine runs the job (the previous call came within the 30 s and found it warm), it is
# followed. Otherwise CMD_FILE is started with job.sh: on the first segment (FIRST=1), or when
# RESUME_FILE (what a previous segment brought back, carried by this call) exists; else the
# call exits 3 at once, before waiting out its seconds. After SECONDS (or when the job is done)
# COLLECT_FILE runs in the job's tree with $OUT set, to put under $OUT/r what the next segment
# resumes from (a pack split into parts under the 16 MiB a returned file may have, results).
cmd=${1:?usage: segment.sh CMD_FILE SECONDS [COLLECT_FILE]}
secs=${2:?usage: segment.sh CMD_FILE SECONDS [COLLECT_FILE]}
collect=${3:-}
g=${JOB_ROOT:-/tmp/g}
# FIRST=1 on a machine whose job is over (still warm from it: session 60 followed the finished
# job instead) starts the new one; that job's folder is kept beside it. While a job runs, FIRST=1
# follows it: one job at a time.
if [ -n "$FIRST" ] && [ -e "$g/done" ]; then
    kept="$g.$(cat "$g/t0")"
    mv "$g" "$kept"
    echo "segment: the previous job on this machine is over; its folder is now $kept"
fi
if [ -e "$g/t0" ]; then
    echo "segment: following the job started $(( $(date +%s) - $(cat "$g/t0") )) s ago"
elif [ -n "$FIRST" ] || { [ -n "$RESUME_FILE" ] && [ -e "$RESUME_FILE" ]; }; then
    echo "segment: starting $cmd${RESUME_FILE:+ (resume file: $RESUME_FILE)}"
    setsid nohup bash tools/device/job.sh "$cmd" >/dev/null 2>&1 </dev/null &
    sleep 5
else
    echo "segment: a fresh machine and nothing to resume from (${RESUME_FILE:-RESUME_FILE unset}); carry it and call again" >&2
    exit 3
fi
bash tools/device/wait.sh "$secs" | tail -c 1500
if [ -n "$collect" ]; then
    mkdir -p "$OUT/r"
    (cd "$g/tree" && bash "$collect")
    ls -la "$OUT/r"
fi

#!/usr/bin/env bash
# Runs CMD_FILE (a bash script) detached from the device command, so it outlives it:
#   setsid nohup bash tools/device/job.sh .devrun/cmd.sh >/dev/null 2>&1 </dev/null &
# State in $JOB_ROOT (default /tmp/g): t0, job.log (the script's output), smi.log (GPU use every
# 10 s), rc, t1, done.
#
# The job runs in a private copy of the tree ($JOB_ROOT/tree), not in the repository root: every
# later device command unpacks the working tree over the root again, and a process started
# while that happens finds modules missing (2026-12-03: a Compress3D run's spawned workers died
# with "No module named 'gs_core.data.layout'" when a wait.sh call arrived at that moment).
cmd=${1:?usage: job.sh CMD_FILE}
g=${JOB_ROOT:-/tmp/g}  # the job's folder (tests use another); its collect scripts read it too
export JOB_ROOT=$g
mkdir -p "$g" && date +%s > "$g/t0"
rm -rf "$g/tree" && mkdir -p "$g/tree"
tar --exclude=./.git --exclude=./.venv -cf - . | tar -xf - -C "$g/tree"
cd "$g/tree" || exit 3
source tools/device/env.sh
# Stopped by its PID, not by "$g/done": a later segment may move "$g" aside once it is done.
(while true; do
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader >> "$g/smi.log"
    sleep 10
done) &
smi=$!
bash "$cmd" > "$g/job.log" 2>&1
echo $? > "$g/rc"; date +%s > "$g/t1"
kill "$smi" 2>/dev/null
touch "$g/done"

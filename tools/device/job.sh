#!/usr/bin/env bash
# Runs CMD_FILE (a bash script) detached from the device command, so it outlives it:
#   setsid nohup bash tools/device/job.sh .devrun/cmd.sh >/dev/null 2>&1 </dev/null &
# State in /tmp/g: t0, job.log (the script's output), smi.log (GPU use every 10 s), rc, t1, done.
#
# The job runs in a private copy of the tree (/tmp/g/tree), not in the repository root: every
# later device command unpacks the working tree over the root again, and a process started
# while that happens finds modules missing (2026-12-03: a Compress3D run's spawned workers died
# with "No module named 'gs_core.data.layout'" when a wait.sh call arrived at that moment).
cmd=${1:?usage: job.sh CMD_FILE}
mkdir -p /tmp/g && date +%s > /tmp/g/t0
rm -rf /tmp/g/tree && mkdir -p /tmp/g/tree
tar --exclude=./.git --exclude=./.venv -cf - . | tar -xf - -C /tmp/g/tree
cd /tmp/g/tree || exit 3
source tools/device/env.sh
(while [ ! -e /tmp/g/done ]; do
    nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader >> /tmp/g/smi.log
    sleep 10
done) &
bash "$cmd" > /tmp/g/job.log 2>&1
echo $? > /tmp/g/rc; date +%s > /tmp/g/t1; touch /tmp/g/done

# What the next segment of tools/device/jobs/teacher.sh resumes from, under $OUT/r: the newest
# packed teacher split into parts under the 16 MiB a returned file may have (join them with
# `cat $TEACHER.safetensors.part-* > .teacher/$TEACHER.safetensors`), the run's results when it
# is done, and the logs.
T=${TEACHER:-zero123}
p=/tmp/t/work/$T/$T.safetensors
[ -f "/tmp/t/out/$T.safetensors" ] && p=/tmp/t/out/$T.safetensors
[ -f "$p" ] && split -b 15000000 -d "$p" "$OUT/r/$T.safetensors.part-"
cp /tmp/t/out/results.json "/tmp/t/work/$T/result.json" /tmp/g/job.log /tmp/g/gputest.log \
    "$OUT/r/" 2>/dev/null
tail -3 /tmp/g/gputest.log 2>/dev/null
true

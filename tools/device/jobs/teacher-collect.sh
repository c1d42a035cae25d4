# What the next segment of tools/device/jobs/teacher.sh resumes from, under $OUT/r: each
# teacher's newest pack split into parts under the 16 MiB a returned file may have (join them
# with `cat NAME.safetensors.part-* > .teacher/NAME.safetensors`), the run's results when it is
# done (which hold every teacher's), else each finished teacher's result.json as
# NAME-result.json, and the log: at most 8 files for two teachers with wait.sh's two logs, the
# most the device brings back (session 34 lost a part to a ninth file).
t_root=${TEACHER_ROOT:-/tmp/t}  # the job's --work and --out live here; the log in /tmp/g
g_root=${JOB_ROOT:-/tmp/g}
# The teachers of the job: TEACHER as the job was started with, else (a follow-up call that
# left it out: session 45's brought back no pack) every teacher with a checkpoint in work/.
teachers=${TEACHER:-}
if [ -z "$teachers" ]; then
    for d in "$t_root"/work/*/; do
        n=$(basename "$d")
        [ -f "$d/$n.safetensors" ] && teachers="$teachers${teachers:+ }$n"
    done
fi
for t in ${teachers:-zero123}; do
    p=$t_root/work/$t/$t.safetensors
    [ -f "$t_root/out/$t.safetensors" ] && p=$t_root/out/$t.safetensors
    [ -f "$p" ] && split -b 15000000 -d "$p" "$OUT/r/$t.safetensors.part-"
    [ -f "$t_root/out/results.json" ] || cp "$t_root/work/$t/result.json" "$OUT/r/$t-result.json" 2>/dev/null
done
cp "$t_root/out/results.json" "$g_root/job.log" "$OUT/r/" 2>/dev/null
# The teacher's sample sheet (--sheet) when it trained alone: two teachers' packs, logs and
# results already fill the eight files (the sheets stay in the job's out/ on the machine).
t_words=(${teachers:-zero123})
[ "${#t_words[@]}" -eq 1 ] && cp "$t_root/out/${t_words[0]}-samples.png" "$OUT/r/" 2>/dev/null
# teacher.sh's THEN_SECONDS: the first stage's results once the second has begun
[ -f "$t_root/stage1/results.json" ] && cp "$t_root/stage1/results.json" "$OUT/r/stage1-results.json"
# teacher.sh's EVAL_ALSO: the carried packs evaluated beside the training
[ -f "$t_root/eval-out/results.json" ] && cp "$t_root/eval-out/results.json" "$OUT/r/eval-results.json"
[ -f "$g_root/gputest.log" ] && cp "$g_root/gputest.log" "$OUT/r/" && tail -3 "$g_root/gputest.log"
true

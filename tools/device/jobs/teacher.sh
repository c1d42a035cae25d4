# Procedural teachers trained on one GPU in segments (tools/device/segment.sh runs this file
# through job.sh, in the job's copy of the tree). Environment:
#   TEACHER  one of zero123 | zero123plus | imagedream, or several separated by spaces, trained
#            at once on the one GPU (default zero123)
#   SECONDS_TRAIN  training seconds of this segment's run: a number for every teacher, or JSON
#            per teacher, e.g. '{"zero123": 500, "imagedream": 1300}' (default 1000)
#   GPU_TESTS  non-empty: also run the teachers' GPU tests beside it (/tmp/g/gputest.log): the
#            graphed U-Nets, and on two GPUs the data-parallel ranks over NCCL
#   TEACHER_GPU  the --gpus entry of every teacher (default 0), or one per teacher separated by
#            commas ("0,1" on nvidia-h200-x2: each teacher its own GPU); `cpu` with
#            TEACHER_ARGS="--preset tiny" and COMPILE= runs this file on a CPU in seconds, as its
#            test does
#   COMPILE  the compile flag (default --compile-graphs)
#   TEACHER_ARGS  more flags of train_procedural_teachers.py, e.g. a learning-rate cooldown for
#            one teacher and a reported guidance scale: "--set zero123:cooldown=1 --guidance 5"
#   EVAL_ALSO  carried packs (.teacher/NAME.safetensors, names separated by spaces) to evaluate
#            as they are (--eval-only) in a second process beside the training, on the first
#            --gpus entry (its log: $JOB_ROOT/eval.log, default /tmp/g); teacher-collect.sh
#            brings back its results as eval-results.json
#   EVAL_ARGS  more flags of that evaluation, e.g. another sampler and more scales at one seed:
#            "--eval-sampler ddpm --guidance 2,3 --seeds 1"
#   RESUME_DIR  the folder of packs to continue (default .teacher), e.g. packages/gs-priors/teachers
#            for the compact ImageDream tracked in the repository (with TEACHER_ARGS="--preset
#            compact"): carrying a copy in .teacher as well would exceed what a lease copies
#   THEN_SECONDS  a second stage after the first ends well: every teacher continues from the
#            first stage's pack (moved to $TEACHER_ROOT/stage1, which the collect brings back as
#            stage1-results.json) for these seconds, in the same work folder (its data and VAE
#            reused), with its learning-rate warm-up and cooldown run again: a restart. A number
#            or JSON per teacher, as SECONDS_TRAIN; meant for one lease (a resumed segment would
#            run the first stage again); --no-eval in TEACHER_ARGS skips the first stage's checks
#   THEN_ARGS  the second stage's flags in place of TEACHER_ARGS (repeat --preset there), e.g.
#            "--preset compact --set cooldown=1": the compact Zero123 of the gs-priors README
#   TEACHER_ROOT  the folder of the job's work, output and stages (default /tmp/t)
# With RESUME_DIR/NAME.safetensors there (a pack an earlier segment brought back), that teacher
# continues from it and every teacher of the run takes its VAE (a teacher without a pack trains
# from scratch on it); otherwise a new VAE is trained.
T=${TEACHER:-zero123}
S=${SECONDS_TRAIN:-1000}
G=${TEACHER_GPU:-0}
gpus=""
for t in $T; do gpus="$gpus${gpus:+,}$G"; done
[[ $G == *,* ]] && gpus=$G  # already one entry per teacher
[ "$G" = cpu ] && gpus=cpu  # the script's CPU mode names the CPU once
t_root=${TEACHER_ROOT:-/tmp/t}
per_teacher() {  # SECONDS_TRAIN's forms: a number for every teacher, or JSON as it is
    if [[ $1 == \{* ]]; then echo "$1"; return; fi
    local json=""
    for t in $T; do json="$json${json:+, }\"$t\": $1"; done
    echo "{$json}"
}
S=$(per_teacher "$S")
set_aside() {  # an earlier job's folder on a machine still warm from it: kept, not overwritten
    local kept
    kept="$1.$(date +%s)"
    if [ -e "$1" ]; then mv "$1" "$kept" && echo "teacher.sh: an earlier job's $1 is now $kept"; fi
}
set_aside "$t_root/out"
set_aside "$t_root/eval-out"
R=""
D=${RESUME_DIR:-.teacher}
for p in "$D"/*.safetensors; do [ -f "$p" ] && R="--resume $D"; done
if [ -n "$EVAL_ALSO" ]; then
    # shellcheck disable=SC2086  # the names split into words on purpose
    (python3 packages/gs-priors/scripts/train_procedural_teachers.py --work "$t_root/eval-work" \
        --out "$t_root/eval-out" --gpus "${gpus%%,*}" --priors $EVAL_ALSO --resume .teacher \
        --eval-only --no-fp16-check $EVAL_ARGS > "${JOB_ROOT:-/tmp/g}/eval.log" 2>&1 &)
fi
if [ -n "$GPU_TESTS" ]; then
    (python3 -m pytest -m gpu -q packages/gs-priors/tests/test_teachers.py -k "graphed_compiled or nccl" \
        > "${JOB_ROOT:-/tmp/g}/gputest.log" 2>&1 &)
fi
# Checkpoints every 60 s: a segment that ends with the machine loses at most that much.
# shellcheck disable=SC2086  # $T, $R and the optional flags split into words on purpose
python3 packages/gs-priors/scripts/train_procedural_teachers.py --work "$t_root/work" \
    --out "$t_root/out" --gpus "$gpus" --priors $T ${COMPILE---compile-graphs} --vae-seconds 120 \
    --seconds "$S" --checkpoint-every 60 --no-fp16-check $R $TEACHER_ARGS || exit $?
[ -n "$THEN_SECONDS" ] || exit 0
for t in $T; do
    if [ ! -f "$t_root/out/$t.safetensors" ]; then
        echo "THEN_SECONDS: the first stage left no $t_root/out/$t.safetensors to continue" >&2
        exit 4
    fi
done
set_aside "$t_root/stage1"
mv "$t_root/out" "$t_root/stage1"
echo "second stage: continuing $T from $t_root/stage1"
# shellcheck disable=SC2086  # as above
python3 packages/gs-priors/scripts/train_procedural_teachers.py --work "$t_root/work" \
    --out "$t_root/out" --gpus "$gpus" --priors $T ${COMPILE---compile-graphs} \
    --seconds "$(per_teacher "$THEN_SECONDS")" --checkpoint-every 60 --no-fp16-check \
    --resume "$t_root/stage1" $THEN_ARGS

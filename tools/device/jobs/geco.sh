# GECO's Table 2 on procedural-eval (plugins/gs-method-geco/scripts/train_small.py) on one GPU
# lease, in segments (tools/device/segment.sh runs this file through job.sh, in the job's copy of
# the tree). The Zero123++ teacher is the packed file a teacher lease brought back, carried in
# .teacher (since session 42 the gs-priors fifteenth run's). Environment:
#   SEEDS       training seeds run one after another, separated by spaces (default "0"); each
#               run writes GECO_ROOT/seedS, and the later ones train on the first one's data
#               (two runs at once on one GPU contended for the host: GECO README)
#   VIEW_SIZE   the teacher's view size (default 64)
#   BUDGET      wall-clock seconds per trained stage, train_small.py's --budget-s (one number, or
#               JSON keyed by reconstructor, stage1, stage2; default: none, the small preset's
#               whole schedule)
#   GECO_ARGS   more flags of train_small.py without spaces inside a value, e.g.
#               "--lgm-steps 1464 --set vsd_iterations=768"
#   TRAIN_TEACHER  instead of a carried pack: seconds to train the teacher in the first seed's
#               run (--train-teacher, beside its data and gsplat's build); later seeds read the
#               teacher it trained
#   TEACHER_ARGS   with TRAIN_TEACHER, flags of that teacher, e.g. "--teacher-preset compact
#               --teacher-init-from packages/gs-priors/teachers/imagedream.safetensors"
# geco-collect.sh brings back each seed's results.json, or before it exists its
# results.partial.json (the stages' record and every variant scored so far), the log, and the
# contact sheets of each finished seed.
root=${GECO_ROOT:-/tmp/geco}
first=""
teacher=("${TEACHER_FILE:-.teacher/zero123plus.safetensors}")
# shellcheck disable=SC2086  # TEACHER_ARGS and GECO_ARGS split into words on purpose
[ -n "$TRAIN_TEACHER" ] && teacher=(--train-teacher "$TRAIN_TEACHER" $TEACHER_ARGS)
for s in ${SEEDS:-0}; do
    data=()
    if [ -n "$first" ]; then
        data=(--data "$root/seed$first/data/train" --eval-data "$root/seed$first/data/procedural-eval")
        [ -n "$TRAIN_TEACHER" ] && teacher=("$root/seed$first/teacher/work/zero123plus/fp16")
    fi
    # shellcheck disable=SC2086
    python3 plugins/gs-method-geco/scripts/train_small.py "${teacher[@]}" \
        --out "$root/seed$s" --view-size "${VIEW_SIZE:-64}" --seed "$s" "${data[@]}" \
        ${BUDGET:+--budget-s "$BUDGET"} $GECO_ARGS || exit
    first=${first:-$s}
done

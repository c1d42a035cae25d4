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
# geco-collect.sh brings back each seed's results.json, or before it exists its
# results.partial.json (the stages' record and every variant scored so far), the log, and the
# contact sheets of each finished seed.
root=${GECO_ROOT:-/tmp/geco}
first=""
for s in ${SEEDS:-0}; do
    data=()
    [ -n "$first" ] && data=(--data "$root/seed$first/data/train" --eval-data "$root/seed$first/data/procedural-eval")
    # shellcheck disable=SC2086  # GECO_ARGS splits into words on purpose
    python3 plugins/gs-method-geco/scripts/train_small.py "${TEACHER_FILE:-.teacher/zero123plus.safetensors}" \
        --out "$root/seed$s" --view-size "${VIEW_SIZE:-64}" --seed "$s" "${data[@]}" \
        ${BUDGET:+--budget-s "$BUDGET"} $GECO_ARGS || exit
    first=${first:-$s}
done

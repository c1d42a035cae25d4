# DD3G's procedural tables (plugins/gs-method-dd3g/scripts/train_small.py) on one GPU lease, in
# segments (tools/device/segment.sh runs this file through job.sh, in the job's copy of the
# tree). The ImageDream teacher is the compact pack tracked in the repository
# (packages/gs-priors/teachers/imagedream.safetensors, gs-priors' twenty-first run; the
# tables were measured with the twentieth), so a lease
# carries none; the quadruples are made again from it in every lease (deterministic DDIM, seeded).
# Environment:
#   TEACHER_FILE  another packed teacher, e.g. one carried in .teacher (tables joined across
#               leases must share one teacher: summarise_runs.py compares the packs' hashes)
#   VARIANTS    comma-separated (default: Table III's pepd_joint,pepd_es,pepd_iv)
#               (a row followed by +KEY=VALUE... is a probe with settings of its own)
#   FIRST_SEED  the lease's first training seed (default 0); SEEDS seeds per variant (default 1)
#   SEEDS_OF    space-separated VARIANT=N: those variants train N seeds instead of SEEDS
#   STEPS       steps per run (default 3000, the small preset's schedule); EVAL_EVERY (1000)
#   BUDGET_S    instead of STEPS: each run's wall-clock budget in seconds; a rate probe of every
#               run at once sets the common step count that fits it with EVALS (default 4)
#               evaluations, so all six variants reach equal steps inside one lease
#   DD3G_ARGS   more flags of train_small.py, e.g. "--set iv_random_background=false"
# dd3g-collect.sh brings back results.json, or before it exists every run's record so far
# (work/runs, as one runs.tar), for scripts/summarise_runs.py.
V=${VARIANTS:-pepd_joint,pepd_es,pepd_iv}
seeds_of=()
# split on spaces without globbing: a probe's list value, [24,48], is also a glob bracket
read -ra entries <<< "${SEEDS_OF:-}"
for entry in "${entries[@]}"; do
    seeds_of+=(--seeds-of "$entry")  # train_small.py checks the entry itself
done
if [ -n "$BUDGET_S" ]; then
    length=(--budget-s "$BUDGET_S" --evals "${EVALS:-4}")
else
    length=(--steps "${STEPS:-3000}" --eval-every "${EVAL_EVERY:-1000}")
fi
# shellcheck disable=SC2086  # DD3G_ARGS splits into words on purpose
python3 plugins/gs-method-dd3g/scripts/train_small.py --teacher "${TEACHER_FILE:-packages/gs-priors/teachers/imagedream.safetensors}" \
    --out "${DD3G_ROOT:-/tmp/d}/out" --variants "$V" --first-seed "${FIRST_SEED:-0}" --seeds "${SEEDS:-1}" \
    "${seeds_of[@]}" "${length[@]}" --jobs 0 $DD3G_ARGS

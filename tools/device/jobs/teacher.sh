# One procedural teacher trained on one GPU in segments (tools/device/segment.sh runs this file
# through job.sh, in the job's copy of the tree). Environment:
#   TEACHER  zero123 | zero123plus | imagedream (default zero123)
#   SECONDS_TRAIN  training seconds of this segment's run (default 1000)
#   GPU_TESTS  non-empty: also run the graphed U-Nets' GPU tests beside it (/tmp/g/gputest.log)
# With .teacher/$TEACHER.safetensors carried (a pack an earlier segment brought back), the run
# continues from it (its VAE kept); otherwise it starts from scratch with a new VAE.
T=${TEACHER:-zero123}
S=${SECONDS_TRAIN:-1000}
R=""
[ -f ".teacher/$T.safetensors" ] && R="--resume .teacher"
if [ -n "$GPU_TESTS" ]; then
    (python3 -m pytest -m gpu -q packages/gs-priors/tests/test_teachers.py -k graphed_compiled \
        > /tmp/g/gputest.log 2>&1 &)
fi
# Checkpoints every 60 s: a segment that ends with the machine loses at most that much.
python3 packages/gs-priors/scripts/train_procedural_teachers.py --work /tmp/t/work --out /tmp/t/out \
    --gpus 0 --priors "$T" --compile-graphs --vae-seconds 120 --seconds "{\"$T\": $S}" \
    --checkpoint-every 60 --no-fp16-check $R

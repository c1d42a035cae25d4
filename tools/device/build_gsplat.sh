#!/usr/bin/env bash
# On the GPU machine: build gsplat's CUDA extension once (its JIT path) and bring the built
# library back as $OUT/gsplat_cuda.so; kept here as `.gsplat/gsplat_cuda.so` (ignored, carried
# with `carry: [".whl", ".site", ".gsplat"]`) it lets env.sh skip the build on later machines.
# The library matches one torch / CUDA pair: rebuild when the machine's torch changes.
set -euo pipefail
source tools/device/env.sh
python3 -c "import gsplat.cuda._backend as b; import torch; print(b._C, torch.__version__, torch.version.cuda)"
so=$(find ~/.cache/torch_extensions -name 'gsplat_cuda.so' | head -1)
[ -n "$so" ] || { echo "gsplat's JIT build left no gsplat_cuda.so under ~/.cache/torch_extensions" >&2; exit 1; }
cp "$so" "$OUT/gsplat_cuda.so" && ls -la "$OUT"

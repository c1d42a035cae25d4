# Source from the repository root on the GPU machine: installs the carried wheels, puts the
# working tree's sources first on PYTHONPATH, and (when `.gsplat/gsplat_cuda.so` was carried)
# gsplat's prebuilt extension, which skips its 60-130 s JIT build.
# (a second call on the same machine warns once per package that it exists: not shown)
# Every carried wheel folder: .whl (all), or .whl-min / .whl-teacher (tools/device/min-wheels.sh:
# without the wheels only other methods import) where a teacher pack leaves no room for .whl.
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
    $(ls .whl/*.whl .whl-min/*.whl .whl-teacher/*.whl 2>/dev/null) 2>&1 | grep -v 'already exists' >&2
if [ -f .gsplat/gsplat_cuda.so ] && [ -d /tmp/site/gsplat ]; then
    cp .gsplat/gsplat_cuda.so /tmp/site/
    # gsplat imports `gsplat.csrc` first (its prebuilt path) and builds only if that fails.
    printf 'import sys\nimport gsplat_cuda\nsys.modules[__name__] = gsplat_cuda\n' > /tmp/site/gsplat/csrc.py
fi
export PYTHONPATH=$(ls -d packages/*/src plugins/*/src | paste -sd:):.site:/tmp/site
export PYTHONUNBUFFERED=1 MAX_JOBS=16
# NVLink multicast stays off on the two-GPU machine (shared/device/README.md).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

#!/usr/bin/env bash
# Builds .whl-min: the carried wheels (.whl) without those only other methods import (CLIP's
# open_clip with ftfy and wcwidth, trimesh, PyMCubes and xatlas for meshes, lpips), 3.8 MB
# less, so that a 27.6 MB teacher pack, the tree and the wheels fit the 64 MiB a device call
# carries. tools/device/env.sh installs whichever of .whl and .whl-min was carried; carry one.
#   bash tools/device/min-wheels.sh && du -cb $(git ls-files) .whl-min .site .teacher | tail -1
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
gitdir=$(git rev-parse --git-dir)
grep -qx '/.whl-min/' "$gitdir/info/exclude" 2>/dev/null || echo '/.whl-min/' >> "$gitdir/info/exclude"
rm -rf .whl-min && mkdir .whl-min
for w in .whl/*.whl; do
    case $(basename "$w") in
        open_clip_torch-* | ftfy-* | wcwidth-* | trimesh-* | PyMCubes-* | xatlas-* | lpips-*) ;;
        *) ln "$w" .whl-min/ 2>/dev/null || cp "$w" .whl-min/ ;;
    esac
done
ls .whl-min

#!/usr/bin/env bash
# Builds .whl-min: the carried wheels (.whl) without those only other methods import (CLIP's
# open_clip with ftfy and wcwidth, trimesh, PyMCubes and xatlas for meshes, lpips), 3.8 MB
# less, so that a 27.6 MB teacher pack, the tree and the wheels fit the 64 MiB a device call
# carries. tools/device/env.sh installs whichever of .whl, .whl-min and .whl-teacher was
# carried; carry one.
#   bash tools/device/min-wheels.sh && du -cb $(git ls-files) .whl-min .site .teacher | tail -1
# `min-wheels.sh teacher` builds .whl-teacher instead: also without gsplat and plyfile (6.6 MB),
# which the teachers' jobs never import, so that a compact teacher pack (15-16 MB) fits beside
# the tree and the tracked ImageDream (session 60: the compact Zero123's second stage).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
variant=${1:-}
case $variant in
    "") dir=.whl-min ;;
    teacher) dir=.whl-teacher ;;
    *) echo "min-wheels.sh: expected no argument or 'teacher', got '$variant'" >&2; exit 2 ;;
esac
gitdir=$(git rev-parse --git-dir)
grep -qx "/$dir/" "$gitdir/info/exclude" 2>/dev/null || echo "/$dir/" >> "$gitdir/info/exclude"
rm -rf "$dir" && mkdir "$dir"
for w in .whl/*.whl; do
    case $(basename "$w") in
        open_clip_torch-* | ftfy-* | wcwidth-* | trimesh-* | PyMCubes-* | xatlas-* | lpips-*) ;;
        gsplat-* | plyfile-*) [ "$variant" = teacher ] || ln "$w" "$dir/" 2>/dev/null || cp "$w" "$dir/" ;;
        *) ln "$w" "$dir/" 2>/dev/null || cp "$w" "$dir/" ;;
    esac
done
ls "$dir"

"""What Inductor's local autotune cache holds, one line per file, for a max-autotune run that
spans leases (bench-priors.sh, bench-priors-collect.sh):

    python3 tools/device/jobs/autotune_cache.py DIR

DIR is ``$TORCHINDUCTOR_CACHE_DIR/cache``: one JSON file per machine (named by the hash of its
GPU and its CUDA and Triton versions), ``{"system": ..., "cache": {op: {inputs: {precision:
{choice: seconds}}}}}``. The same ``cache`` also holds pad_mm's flat entries (a string key to
the time of an unpadded matmul, or to whether padding it won), which session 65 found beside
the tuned operations on an H100 with torch 2.15; they are counted apart. Each line names the
file, the GPU it was tuned on, and how many operations it holds by kind; the last line says
which file this machine would read, since a file tuned on another GPU, CUDA or Triton is
ignored rather than reused."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def summary(path: Path) -> str:
    """``NAME: N operations (kind: n, ...) tuned on GPU`` for one cache file, or why not."""
    try:
        data = json.loads(path.read_text())
        entries = data["cache"].items()
        counts = Counter({op: len(shapes) for op, shapes in entries if isinstance(shapes, dict)})
        padding = sum(1 for _, value in entries if not isinstance(value, dict))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{path.name}: not an Inductor autotune cache ({type(e).__name__}: {e})"
    device = (
        data.get("system", {}).get("device", {}) if isinstance(data.get("system"), dict) else {}
    )
    gpu = device.get("name") if isinstance(device, dict) else None
    kinds = ", ".join(f"{op}: {n}" for op, n in counts.most_common())
    pads = f", {padding} matmul padding entries" if padding else ""
    return (
        f"{path.name}: {sum(counts.values())} operations ({kinds or 'none'}){pads}"
        f" tuned on {gpu or 'an unnamed device'}"
    )


def this_machine() -> str:
    """The cache file this machine's Inductor reads, or why it cannot say (no torch, no GPU)."""
    try:
        from torch._inductor.codecache import CacheBase

        return f"this machine reads {CacheBase.get_local_cache_path().name}"
    except Exception as e:  # a CPU-only machine without a working Inductor still gets the counts
        return f"this machine's cache file is unknown ({type(e).__name__}: {e})"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: autotune_cache.py DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
    for path in files:
        print(f"autotune: {summary(path)}")
    if not files:
        print(f"autotune: {folder} holds no autotune timings yet")
    print(f"autotune: {this_machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

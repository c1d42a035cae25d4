"""What travels to the GPU machine stays within its budget.

Every run on the GPU machine receives the whole tracked tree plus the wheels it needs, 64 MiB in
all. The tracked tree keeps under 40 MiB of that, and the weights bundled in plugins under
32 MiB (stored fp16 or int8 weight-only, dequantised at load).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
TRACKED_BUDGET = 40 * MIB
WEIGHTS_BUDGET = 32 * MIB
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".npz")
STORAGE_DTYPES = {"F16", "BF16", "I8", "U8", "I64", "I32", "BOOL"}


def tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked tree is defined by git")
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [ROOT / p for p in out.decode().split("\0") if p and (ROOT / p).is_file()]


def _report(files: list[Path], limit: int) -> str:
    largest = sorted(files, key=lambda p: p.stat().st_size, reverse=True)[:limit]
    return ", ".join(f"{p.relative_to(ROOT)} {p.stat().st_size / MIB:.1f} MiB" for p in largest)


def test_tracked_tree_within_budget():
    files = tracked_files()
    total = sum(p.stat().st_size for p in files)
    assert total <= TRACKED_BUDGET, (
        f"tracked tree is {total / MIB:.1f} MiB, over the {TRACKED_BUDGET // MIB} MiB budget; "
        f"largest: {_report(files, 5)}"
    )


def test_bundled_weights_within_budget():
    weights = [p for p in tracked_files() if p.name.endswith(WEIGHT_SUFFIXES)]
    total = sum(p.stat().st_size for p in weights)
    assert total <= WEIGHTS_BUDGET, (
        f"bundled weights are {total / MIB:.1f} MiB, over the {WEIGHTS_BUDGET // MIB} MiB budget: "
        f"{_report(weights, 10)}; store fp16 / int8 or ship a retraining script instead"
    )


def test_bundled_weights_stored_compactly():
    """No fp32 tensors in bundled safetensors: fp16 halves what travels, at no measured cost."""
    import json
    import struct

    for path in tracked_files():
        if path.suffix != ".safetensors":
            continue
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        wide = sorted(
            k for k, v in header.items() if k != "__metadata__" and v["dtype"] not in STORAGE_DTYPES
        )
        assert not wide, f"{path.relative_to(ROOT)}: tensors stored wider than fp16: {wide[:5]}"

"""The ``.splat`` format of web splat viewers: 32-byte records, no header.

Each record: position ``3 x float32``, linear scale ``3 x float32``, colour RGBA ``4 x uint8``
(diffuse colour from the degree-0 SH and opacity), rotation ``4 x uint8`` (unit wxyz quaternion
mapped ``q * 128 + 128``). Records are sorted by decreasing ``opacity * volume`` so viewers that
stream the file show the most visible splats first. The format keeps only diffuse colour and
quantises colour and rotation, so it is an export format; PLY is the lossless one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gs_core.errors import FileFormatError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.io.atomic import atomic_write_bytes, check_overwrite

SPLAT_DTYPE = np.dtype(
    [("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)]
)
assert SPLAT_DTYPE.itemsize == 32


def gaussians_to_splat_bytes(gaussians: Gaussians) -> bytes:
    if gaussians.batch_shape:
        raise ValidationError(
            "save_splat(gaussians)",
            "unbatched Gaussians [N, ...]",
            f"batch shape {gaussians.batch_shape}",
        )
    g = gaussians.detach().to("cpu", torch.float64)
    scales = g.scales.numpy()
    opac = g.opacities.numpy()
    order = np.argsort(-(scales.prod(1) * opac), kind="stable")
    rec = np.zeros(g.num_gaussians, dtype=SPLAT_DTYPE)
    rec["position"] = g.means.numpy()[order]
    rec["scale"] = scales[order]
    rgba = np.concatenate([g.colors.numpy(), opac[:, None]], 1)[order]
    rec["rgba"] = np.clip(rgba * 255 + 0.5, 0, 255).astype(np.uint8)
    q = g.quats.numpy()
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    rec["rot"] = np.clip(q[order] * 128 + 128, 0, 255).astype(np.uint8)
    return rec.tobytes()


def save_splat(path: str | Path, gaussians: Gaussians, overwrite: bool = True) -> Path:
    """Write unbatched Gaussians as a ``.splat`` file, atomically."""
    path = Path(path)
    check_overwrite(path, overwrite, directory=False)
    atomic_write_bytes(path, gaussians_to_splat_bytes(gaussians))
    return path


def load_splat(path: str | Path) -> Gaussians:
    """Read a ``.splat`` file (lossy: colour and rotation are 8-bit, SH degree 0)."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    if len(blob) % 32:
        raise FileFormatError(
            path, f"size {len(blob)} is not a multiple of 32 bytes (.splat records)"
        )
    rec = np.frombuffer(blob, dtype=SPLAT_DTYPE)
    means = torch.from_numpy(rec["position"].astype(np.float32))
    scales = torch.from_numpy(rec["scale"].astype(np.float32))
    rgba = torch.from_numpy(rec["rgba"].astype(np.float32) / 255.0)
    q = torch.from_numpy((rec["rot"].astype(np.float32) - 128.0) / 128.0)
    if not bool(torch.isfinite(means).all()) or not bool(torch.isfinite(scales).all()):
        raise FileFormatError(path, "NaN/Inf positions or scales")
    if bool((q.norm(dim=-1) == 0).any()):
        raise FileFormatError(path, "zero rotation quaternion in some records")
    q = q / q.norm(dim=-1, keepdim=True)
    try:
        return Gaussians.from_colors(means, rgba[:, :3], scales.clamp_min(1e-12), rgba[:, 3], q)
    except ValidationError as e:
        raise FileFormatError(path, str(e)) from None

"""View-dependent colour from real spherical harmonics (3DGS, Kerbl et al. 2023, Sec. 4).

Coefficients follow the INRIA layout ``[..., K, 3]`` with ``K = (degree + 1) ** 2`` ordered by
band (l = 0, 1, 2, 3) and within a band by m = -l .. l. The evaluation direction is from the
camera centre to the Gaussian centre (it does not need to be normalised), and the colour is
``max(sum_k Y_k(d) f_k + 0.5, 0)`` as in the INRIA rasteriser and gsplat.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import SH_C0

# Normalisation constants of the real SH basis, bands 1..3 (the polynomial form used by the
# INRIA 3DGS code). Band 2 and 3 polynomials use x^2 + y^2 + z^2 = 1, so ``dirs`` is normalised
# first.
SH_C1 = 0.4886025119029199
SH_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)

MAX_SH_DEGREE = 3


def num_sh_bases(degree: int) -> int:
    return (degree + 1) ** 2


def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """Real SH basis values ``[..., (degree+1)^2]`` at directions ``dirs [..., 3]``.

    ``dirs`` is normalised here; a zero direction gives the degree-0 term only.
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValidationError("sh_degree", f"an int in [0, {MAX_SH_DEGREE}]", repr(degree))
    out = [torch.full_like(dirs[..., 0], SH_C0)]
    if degree == 0:
        return out[0].unsqueeze(-1)
    d = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z = d.unbind(-1)
    out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        xy, yz, xz = x * y, y * z, x * z
        out += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
        if degree >= 3:
            out += [
                SH_C3[0] * y * (3.0 * xx - yy),
                SH_C3[1] * xy * z,
                SH_C3[2] * y * (4.0 * zz - xx - yy),
                SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
                SH_C3[4] * x * (4.0 * zz - xx - yy),
                SH_C3[5] * z * (xx - yy),
                SH_C3[6] * x * (xx - 3.0 * yy),
            ]
    return torch.stack(out, dim=-1)


def eval_sh(degree: int, dirs: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Evaluate SH ``coeffs [..., K, 3]`` at ``dirs [..., 3]`` using the first ``degree`` bands.

    Returns the raw radiance ``[..., 3]`` (no +0.5 offset, no clamp). ``K`` may exceed
    ``(degree+1)^2``; the extra bands are ignored (progressive SH training).
    """
    k = num_sh_bases(degree)
    if coeffs.shape[-2] < k:
        raise ValidationError(
            "sh", f"at least {k} coefficients for degree {degree}", f"K = {coeffs.shape[-2]}"
        )
    basis = sh_basis(degree, dirs)  # [..., k]
    return (basis.unsqueeze(-1) * coeffs[..., :k, :]).sum(-2)


def sh_to_rgb(degree: int, dirs: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Colour ``[..., 3]`` seen along ``dirs``: ``max(eval_sh + 0.5, 0)`` (INRIA / gsplat)."""
    return torch.clamp_min(eval_sh(degree, dirs, coeffs) + 0.5, 0.0)

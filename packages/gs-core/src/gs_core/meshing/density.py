"""Density of a Gaussian set sampled on a regular grid, the input to marching cubes.

``d(x) = sum_i o_i exp(-0.5 (x - mu_i)^T Sigma_i^-1 (x - mu_i))``: DreamGaussian's density (no
normalising constant), so one opaque Gaussian peaks at its opacity and the value does not change
when a scene and its Gaussians are scaled together; only the grid's resolution does.

Each Gaussian touches only the grid points inside its ``cutoff``-sigma bounding box. Gaussians
are sorted by box size and evaluated in blocks of similar size, each block on one shared window
of grid offsets, so the work is vectorised and one block holds at most ``chunk`` evaluations.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians
from gs_core.rendering.projection import quat_to_rotmat

# DreamGaussian normalises the Gaussians' bounding box to [-0.9, 0.9] inside a [-1, 1] grid: the
# margin leaves room for the Gaussians' own extent beyond their centres.
BOX_FILL = 0.9


def default_bounds(means: torch.Tensor, fill: float = BOX_FILL) -> torch.Tensor:
    """A cube ``[2, 3]`` (min corner, max corner) centred on the bounding box of ``means [N, 3]``
    whose largest side the box fills to the fraction ``fill``."""
    if means.ndim != 2 or means.shape[-1] != 3 or means.shape[0] == 0:
        raise ValidationError("means", "a non-empty tensor [N, 3]", str(tuple(means.shape)))
    lo, hi = means.amin(0), means.amax(0)
    center = 0.5 * (lo + hi)
    # a single point (or a flat set) still gets a cube of positive size
    half = (0.5 * (hi - lo).max()).clamp_min(1e-6) / fill
    return torch.stack([center - half, center + half])


def grid_points(bounds: torch.Tensor, resolution: int) -> torch.Tensor:
    """The grid's sample positions ``[R, R, R, 3]``; ``[i, j, k]`` is at
    ``bounds[0] + (i, j, k) * step`` with ``step = (bounds[1] - bounds[0]) / (R - 1)``, so the
    first and last samples lie on the bounds (as ``torch.linspace``)."""
    axes = [
        torch.linspace(float(bounds[0, a]), float(bounds[1, a]), resolution, device=bounds.device)
        for a in range(3)
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def _check(gaussians: Gaussians, resolution: int, bounds: torch.Tensor | None) -> None:
    if not isinstance(gaussians, Gaussians):
        raise ValidationError("gaussians", "a Gaussians instance", type(gaussians).__name__)
    if gaussians.batch_shape != ():
        raise ValidationError(
            "gaussians", "one unbatched set [N]", f"batch shape {gaussians.batch_shape}"
        )
    if gaussians.num_gaussians == 0:
        raise ValidationError("gaussians", "at least one Gaussian", "an empty set")
    if not isinstance(resolution, int) or resolution < 2:
        raise ValidationError("resolution", "an int >= 2", repr(resolution))
    if bounds is not None and (
        tuple(bounds.shape) != (2, 3) or not bool((bounds[1] > bounds[0]).all())
    ):
        raise ValidationError(
            "bounds", "a [2, 3] tensor (min corner, max corner) with max > min", str(bounds)
        )


def gaussian_density(
    gaussians: Gaussians,
    resolution: int = 128,
    bounds: torch.Tensor | None = None,
    *,
    cutoff: float = 3.0,
    chunk: int = 1 << 22,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample the opacity-weighted density of ``gaussians`` on a ``resolution^3`` grid.

    Args:
        gaussians: one unbatched set (``means [N, 3]``); runs on its device (CPU or CUDA).
        resolution: samples per axis ``R`` (128: DreamGaussian's grid).
        bounds: ``[2, 3]`` min and max corners of the grid; default :func:`default_bounds` of
            the means (a cube that their bounding box fills to 90%, as DreamGaussian).
        cutoff: a Gaussian contributes to the grid points inside its ``cutoff``-sigma
            axis-aligned bounding box only (3: the dropped tail is below ``exp(-4.5) = 1.1%``
            of its peak along an axis).
        chunk: the most (Gaussian, grid point) evaluations held at once; bounds memory to
            about ``chunk * 64`` bytes.

    Returns:
        ``grid [R, R, R]`` (float32, indexed ``[x, y, z]``, positions from :func:`grid_points`)
        and the ``bounds [2, 3]`` used.
    """
    _check(gaussians, resolution, bounds)
    g = gaussians
    device = g.means.device
    means = g.means.detach().float()
    bounds = default_bounds(means) if bounds is None else bounds.to(device=device).float()
    r = resolution
    lo = bounds[0]
    step = (bounds[1] - bounds[0]) / (r - 1)

    rot = quat_to_rotmat(g.quats.detach().float())  # [N, 3, 3]
    scales = g.scales.detach().float()
    # Sigma^-1 = R S^-2 R^T, without inverting a matrix (exact for very flat Gaussians too)
    inv_cov = (rot / scales.square().unsqueeze(-2)) @ rot.transpose(-1, -2)
    # half-extent of the cutoff ellipsoid along each world axis: cutoff * sqrt(Sigma_aa)
    extent = cutoff * (rot.square() * scales.square().unsqueeze(-2)).sum(-1).sqrt()
    first = torch.ceil((means - extent - lo) / step).clamp(0, r - 1).long()  # [N, 3]
    last = torch.floor((means + extent - lo) / step).clamp(0, r - 1).long()
    inside = ((means + extent) >= lo).all(-1) & ((means - extent) <= bounds[1]).all(-1)
    count = (last - first + 1).clamp_min(0)
    keep = inside & (count > 0).all(-1)
    side = count.amax(-1)[keep]  # [M] window side in grid points
    order = side.argsort()
    idx = keep.nonzero().squeeze(-1)[order]
    side = side[order].tolist()

    grid = torch.zeros(r * r * r, dtype=torch.float32, device=device)
    opac = g.opacities.detach().float()
    start, n_all = 0, len(idx)
    while start < n_all:
        # sorted by size: the block's window is its last member's; shrinking the block after
        # looking at that member keeps the cost within the budget
        n = max(1, chunk // side[start] ** 3)
        end = min(n_all, start + n)
        end = min(n_all, start + max(1, chunk // side[end - 1] ** 3))
        k = side[end - 1]
        sel = idx[start:end]
        offs = torch.arange(k, device=device)
        window = torch.stack(torch.meshgrid(offs, offs, offs, indexing="ij"), -1).reshape(-1, 3)
        cell = first[sel].unsqueeze(1) + window  # [n, k^3, 3]
        valid = (cell <= last[sel].unsqueeze(1)).all(-1)
        cell = cell.clamp_max(r - 1)
        d = lo + cell * step - means[sel].unsqueeze(1)  # [n, k^3, 3]
        maha = torch.einsum("nka,nab,nkb->nk", d, inv_cov[sel], d)
        val = opac[sel].unsqueeze(1) * torch.exp(-0.5 * maha) * valid
        flat = (cell[..., 0] * r + cell[..., 1]) * r + cell[..., 2]
        grid.index_add_(0, flat.reshape(-1), val.reshape(-1))
        start = end
    return grid.reshape(r, r, r), bounds

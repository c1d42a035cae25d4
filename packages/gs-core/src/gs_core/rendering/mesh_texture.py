"""Texture sampling with a mip pyramid (the "texture" stage of nvdiffrast's decomposition).

UVs follow ``gs_core.Mesh``: ``[0, 1]`` with ``v`` up, so ``v = 1`` is the texture image's first
row; texel centres sit at half-integers and coordinates outside ``[0, 1]`` clamp to the border.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gs_core.errors import ValidationError


def mip_pyramid(tex: torch.Tensor) -> list[torch.Tensor]:
    """Box-filtered levels ``[1, K, h, w]`` of ``tex [Ht, Wt, K]``, halving down to 1 x 1
    (differentiable, so gradients of every level reach the base texture)."""
    level = tex.permute(2, 0, 1)[None]
    levels = [level]
    while level.shape[-1] > 1 or level.shape[-2] > 1:
        size = (max(1, level.shape[-2] // 2), max(1, level.shape[-1] // 2))
        level = F.interpolate(level, size=size, mode="area")
        levels.append(level)
    return levels


def _neighbour_diff(uv: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Per-pixel finite difference of ``uv [N, H, W, 2]`` along image ``dim`` (1 = y, 2 = x):
    of the forward and backward differences whose neighbour is valid, the smaller one (0 when
    neither is). Differences across a silhouette, or across a UV seam (where the two sides of
    the pixel lie on different charts and one difference jumps), would otherwise pick a far
    level of the pyramid and blur the texture to its average colour along every seam."""
    n = uv.shape[dim]
    if n < 2:
        return torch.zeros_like(uv)
    step = uv.narrow(dim, 1, n - 1) - uv.narrow(dim, 0, n - 1)
    ok = valid.narrow(dim, 1, n - 1) & valid.narrow(dim, 0, n - 1)
    inf = torch.full(valid.shape, float("inf"), dtype=uv.dtype, device=uv.device)
    fwd, bwd = torch.zeros_like(uv), torch.zeros_like(uv)
    fwd.narrow(dim, 0, n - 1).copy_(step)
    bwd.narrow(dim, 1, n - 1).copy_(step)
    fwd_len, bwd_len = inf.clone(), inf.clone()
    size = step.square().sum(-1)
    fwd_len.narrow(dim, 0, n - 1).copy_(torch.where(ok, size, inf.narrow(dim, 0, n - 1)))
    bwd_len.narrow(dim, 1, n - 1).copy_(torch.where(ok, size, inf.narrow(dim, 1, n - 1)))
    d = torch.where((bwd_len < fwd_len)[..., None], bwd, fwd)
    return torch.where(torch.isfinite(torch.minimum(fwd_len, bwd_len))[..., None], d, 0.0)


def mip_level(
    uv: torch.Tensor, tex_size: tuple[int, int], mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Level of detail ``[..., H, W]`` (0 = full resolution) from the UV footprint of a pixel:
    ``log2`` of the longer of the two screen-space UV derivatives, in texels."""
    lead = uv.shape[:-3]
    H, W = uv.shape[-3:-1]
    u = uv.detach().reshape(-1, H, W, 2)
    valid = (
        torch.ones(u.shape[:-1], dtype=torch.bool, device=u.device)
        if mask is None
        else mask.reshape(-1, H, W).bool()
    )
    # in texels (scaled by Python numbers: a tensor of the sizes would be a host-to-device copy,
    # which a CUDA graph cannot record)
    u = torch.stack([u[..., 0] * tex_size[1], u[..., 1] * tex_size[0]], -1)
    dx = _neighbour_diff(u, valid, 2)
    dy = _neighbour_diff(u, valid, 1)
    rho2 = torch.maximum(dx.square().sum(-1), dy.square().sum(-1)).clamp_min(1.0)
    return (0.5 * torch.log2(rho2)).reshape(*lead, H, W)


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    *,
    mip: bool = True,
    mask: torch.Tensor | None = None,
    lod: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample ``tex [Ht, Wt, K]`` at ``uv [..., H, W, 2]``: bilinear, and with ``mip`` trilinear
    between the two pyramid levels around the pixel's level of detail.

    Args:
        mask: ``[..., H, W]`` pixels holding surface (e.g. ``rast.tri_id >= 0``); derivatives
            are not taken across its edges. ``None``: every pixel.
        lod: ``[..., H, W]`` level of detail to use instead of the finite-difference estimate.

    Returns:
        ``[..., H, W, K]``; differentiable w.r.t. ``tex`` and ``uv`` (the level of detail is
        treated as a constant).
    """
    if not isinstance(tex, torch.Tensor) or tex.ndim != 3 or not tex.is_floating_point():
        raise ValidationError("tex", "a float tensor [Ht, Wt, K]", _desc(tex))
    if tex.shape[0] == 0 or tex.shape[1] == 0:
        raise ValidationError("tex", "a non-empty texture", _desc(tex))
    if not isinstance(uv, torch.Tensor) or uv.ndim < 3 or uv.shape[-1] != 2:
        raise ValidationError("uv", "a float tensor [..., H, W, 2]", _desc(uv))
    lead = uv.shape[:-1]
    K = tex.shape[-1]
    uv = uv.to(tex.dtype)
    # grid_sample's (x, y) in [-1, 1] with align_corners=False puts texel centres at
    # half-integers, as in the texture image; v is up in UV space and down in the image.
    grid = torch.stack([uv[..., 0] * 2 - 1, 1 - uv[..., 1] * 2], -1).reshape(1, -1, 1, 2)

    def sample(level: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        s = F.grid_sample(level, g, mode="bilinear", padding_mode="border", align_corners=False)
        return s[0, :, :, 0].transpose(0, 1)  # [P, K]

    if not mip:
        return sample(tex.permute(2, 0, 1)[None], grid).reshape(*lead, K)
    levels = mip_pyramid(tex)
    if lod is None:
        lod = mip_level(uv, (tex.shape[0], tex.shape[1]), mask)
    lod = lod.detach().reshape(-1).to(tex.dtype).clamp(0, len(levels) - 1)
    out = torch.zeros(grid.shape[1], K, dtype=tex.dtype, device=tex.device)
    # On the CPU each level samples only the pixels that use it; elsewhere every level samples
    # every pixel with weight 0 for most (fixed shapes: no host sync, CUDA-graph safe).
    dense = tex.device.type != "cpu"
    for i, level in enumerate(levels):
        w = (1 - (lod - i).abs()).clamp_min(0)
        if dense:
            out = out + w[:, None] * sample(level, grid)
            continue
        sel = (w > 0).nonzero()[:, 0]
        if sel.numel() == 0:
            continue
        out = out.index_add(0, sel, w[sel, None] * sample(level, grid[:, sel]))
    return out.reshape(*lead, K)


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)}"
    return type(x).__name__

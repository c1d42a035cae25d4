"""EWA projection of 3D Gaussians to image-space ellipses (3DGS Sec. 4, Zwicker et al. 2002).

The semantics follow gsplat 1.5 ``fully_fused_projection`` (pinhole) so the torch and gsplat
backends agree:

* covariance ``Sigma = R S S^T R^T`` from a (not necessarily normalised) ``wxyz`` quaternion;
* camera-space covariance ``W Sigma W^T`` and the Jacobian ``J`` of the perspective map at the
  mean, evaluated with the mean's x/z, y/z clamped to 1.3x the half field of view so Gaussians
  far outside the frustum do not blow up;
* a low-pass ``eps2d`` (0.3 px^2) added to the 2D covariance; with ``antialiased=True`` the
  opacity is multiplied by ``sqrt(det(cov) / det(cov + eps2d I))`` (Mip-Splatting, Yu et al.
  2024, Eq. 13);
* an opacity-aware bounding radius per axis, ``ceil(e * sqrt(cov_ii))`` with
  ``e = min(3.33, sqrt(2 ln(o / (1/255))))``: beyond it every pixel's alpha is below 1/255;
* culling (radius 0) for depth outside ``[near_plane, far_plane]``, opacity below 1/255,
  radius at most ``radius_clip``, or a footprint entirely off the image.

Culled entries keep finite values (their depth is replaced by 1 before dividing) so a Gaussian
behind the camera never puts NaN into the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ALPHA_THRESHOLD = 1.0 / 255.0
# Cap of the bounding extent in standard deviations (gsplat's 3.33); with opacity <= 1 the
# opacity-aware extent sqrt(2 ln(255 o)) <= 3.329 is always the tighter one.
MAX_EXTENT = 3.33


@dataclass(frozen=True)
class Projection:
    """Per-camera projected Gaussians; ``[..., C, N, *]`` where ``...`` are batch dims.

    radii:         ``[..., C, N, 2]`` int32 pixel half-extents (x, y); 0 marks a culled entry.
    means2d:       ``[..., C, N, 2]`` pixel coordinates of the centres (pixel centres at +0.5).
    depths:        ``[..., C, N]`` camera-space z.
    conics:        ``[..., C, N, 3]`` upper triangle ``(a, b, c)`` of the inverse 2D covariance.
    opacities:     ``[..., C, N]`` opacity used for compositing (times ``compensations``).
    compensations: ``[..., C, N]`` anti-aliasing factor or ``None`` in classic mode.
    """

    radii: torch.Tensor
    means2d: torch.Tensor
    depths: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    compensations: torch.Tensor | None


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` from ``wxyz`` quaternions ``[..., 4]`` (normalised here)."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    r = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return r.reshape(*quats.shape[:-1], 3, 3)


def quat_scale_to_covar(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """World covariances ``[..., 3, 3] = (R S)(R S)^T`` (3DGS Eq. 6)."""
    m = quat_to_rotmat(quats) * scales.unsqueeze(-2)
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    eps2d: float = 0.3,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    antialiased: bool = False,
) -> Projection:
    """Project Gaussians ``[..., N, *]`` into cameras ``viewmats [..., C, 4, 4]``, ``Ks [..., C, 3, 3]``.

    ``scales`` are linear standard deviations, ``opacities [..., N]`` in [0, 1]; differentiable
    w.r.t. means, quats, scales and opacities (radii are not).
    """
    rot = viewmats[..., :3, :3].unsqueeze(-3)  # [..., C, 1, 3, 3]
    trans = viewmats[..., :3, 3].unsqueeze(-2)  # [..., C, 1, 3]
    mu = means.unsqueeze(-3)  # [..., 1, N, 3]
    means_c = (rot @ mu.unsqueeze(-1)).squeeze(-1) + trans  # [..., C, N, 3]

    # (W R S): camera-space square root of the covariance, so cov2d = (J W R S)(J W R S)^T.
    m_world = (quat_to_rotmat(quats) * scales.unsqueeze(-2)).unsqueeze(-4)  # [..., 1, N, 3, 3]
    m_cam = rot @ m_world  # [..., C, N, 3, 3]

    x, y, z = means_c.unbind(-1)
    in_depth = (z >= near_plane) & (z <= far_plane)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    rz = 1.0 / z_safe

    fx = Ks[..., 0, 0].unsqueeze(-1)  # [..., C, 1]
    fy = Ks[..., 1, 1].unsqueeze(-1)
    cx = Ks[..., 0, 2].unsqueeze(-1)
    cy = Ks[..., 1, 2].unsqueeze(-1)
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    u = x * rz
    v = y * rz
    tx = z_safe * torch.minimum(torch.maximum(u, -lim_x_neg), lim_x_pos)
    ty = z_safe * torch.minimum(torch.maximum(v, -lim_y_neg), lim_y_pos)

    # Rows of J (m_cam): J = [[fx/z, 0, -fx tx/z^2], [0, fy/z, -fy ty/z^2]].
    r0, r1, r2 = m_cam.unbind(-2)  # each [..., C, N, 3]
    t0 = (fx * rz).unsqueeze(-1) * r0 - (fx * tx * rz * rz).unsqueeze(-1) * r2
    t1 = (fy * rz).unsqueeze(-1) * r1 - (fy * ty * rz * rz).unsqueeze(-1) * r2
    c00 = (t0 * t0).sum(-1)
    c01 = (t0 * t1).sum(-1)
    c11 = (t1 * t1).sum(-1)
    means2d = torch.stack([fx * u + cx, fy * v + cy], dim=-1)

    det_orig = c00 * c11 - c01 * c01
    c00 = c00 + eps2d
    c11 = c11 + eps2d
    det = c00 * c11 - c01 * c01
    det_ok = det > 0
    det_safe = torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c11 / det_safe, -c01 / det_safe, c00 / det_safe], dim=-1)

    opac = opacities.unsqueeze(-2)  # [..., 1, N]
    compensations = None
    if antialiased:
        ratio = (det_orig / det_safe).clamp_min(0.0)
        # The epsilon keeps d sqrt / d ratio finite for degenerate (zero-area) Gaussians.
        compensations = torch.sqrt(ratio + 1e-20)
        opac = opac * compensations
    else:
        opac = opac.expand_as(z)

    with torch.no_grad():
        o = opac.detach()
        bright = o >= ALPHA_THRESHOLD
        extent = torch.sqrt(2.0 * torch.log(o.clamp_min(ALPHA_THRESHOLD) / ALPHA_THRESHOLD))
        extent = extent.clamp_max(MAX_EXTENT)
        rad_x = torch.ceil(extent * torch.sqrt(c00.detach().clamp_min(0.0)))
        rad_y = torch.ceil(extent * torch.sqrt(c11.detach().clamp_min(0.0)))
        mx, my = means2d.detach().unbind(-1)
        valid = in_depth & det_ok & bright
        valid &= (rad_x > radius_clip) | (rad_y > radius_clip)
        valid &= (mx + rad_x > 0) & (mx - rad_x < width) & (my + rad_y > 0) & (my - rad_y < height)
        # A non-finite centre (e.g. clamped out-of-frustum maths gone wrong) is never drawn.
        valid &= torch.isfinite(mx) & torch.isfinite(my)
        # Near-plane Gaussians can reach radii beyond int32; any radius past 2^30 px covers
        # every image anyway.
        radii = torch.stack([rad_x, rad_y], dim=-1).clamp_max(2.0**30)
        radii = torch.where(valid.unsqueeze(-1), radii, torch.zeros_like(radii)).to(torch.int32)

    return Projection(
        radii=radii,
        means2d=means2d,
        depths=z,
        conics=conics,
        opacities=opac,
        compensations=compensations,
    )


__all__ = [
    "ALPHA_THRESHOLD",
    "MAX_EXTENT",
    "Projection",
    "project_gaussians",
    "quat_scale_to_covar",
    "quat_to_rotmat",
]

"""The autoencoder's rendering loss (Eq. 12) and its FlexiCubes regularisers.

``L_R = lambda_1 L_rgb + lambda_2 L_mask + lambda_3 L_depth + lambda_kl KL(N(mu, sigma) || N(0, 1))
+ lambda_dev L_dev + lambda_sdf L_SDF``. Eq. 12 prints the KL with a minus sign; minimising it
that way would push the posterior away from the prior, contrary to the text ("we add KL penalty
to ensure that the distribution ... is close to the standard Gaussian"), so it is added. The
image terms are mean squared errors over pixels of renders by gs-core's mesh rasteriser (the
nvdiffrast decomposition the paper uses); the depth error is taken where either image covers
the object. FlexiCubes' regularisers are not listed by Compress3D; we use FlexiCubes' own.
"""

from __future__ import annotations

import torch

from gs_core.cameras import Cameras
from gs_core.rendering import render_mesh
from gs_method_compress3d.autoencoder import DecodedShape, sdf_sign_regularizer
from gs_method_compress3d.config import LossConfig
from gs_method_compress3d.posterior import DiagonalGaussian


def render_shapes(
    shapes: list[DecodedShape], cameras: Cameras, background: torch.Tensor | float = 1.0
) -> dict[str, torch.Tensor]:
    """Render each shape from its cameras ``[B, K]``: ``rgb [B, K, H, W, 3]``, ``alpha`` and
    ``depth [B, K, H, W, 1]``; colour from the shape's ``surface_color`` (the colour MLP at each
    pixel's surface point) when it has one, else its vertex colours."""
    outs = []
    for b, shape in enumerate(shapes):
        bg = (
            background[b]
            if isinstance(background, torch.Tensor) and background.ndim == 2
            else background
        )
        cams = Cameras(
            viewmats=cameras.viewmats[b],
            Ks=cameras.Ks[b],
            width=cameras.width,
            height=cameras.height,
        )
        if shape.mesh is None:  # no surface: the background alone
            k, h, w = cams.viewmats.shape[0], cams.height, cams.width
            like = cams.viewmats
            rgb = torch.as_tensor(bg, dtype=like.dtype, device=like.device).expand(k, h, w, 3)
            zero = like.new_zeros(k, h, w, 1)
            outs.append({"rgb": rgb, "alpha": zero, "depth": zero})
            continue
        # the rasteriser's projections and depth test stay fp32 under autocast
        with torch.autocast(cams.viewmats.device.type, enabled=False):
            r = render_mesh(
                shape.mesh,
                cams,
                background=bg,
                attributes=("rgb", "alpha", "depth"),
                surface_color=shape.surface_color,
            )
        outs.append({"rgb": r.rgb, "alpha": r.alpha, "depth": r.depth})
    return {k: torch.stack([o[k] for o in outs]) for k in ("rgb", "alpha", "depth")}


def autoencoder_loss(
    shapes: list[DecodedShape],
    posterior: DiagonalGaussian,
    renders: dict[str, torch.Tensor],
    target_rgb: torch.Tensor,
    target_alpha: torch.Tensor,
    target_depth: torch.Tensor,
    config: LossConfig,
    empty_surface: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Named terms and their weighted sum ``loss``.

    Args:
        renders: :func:`render_shapes` output; targets ``[B, K, H, W, 3 | 1]`` (depth 0 on the
            background, as the procedural world writes it).
        empty_surface: the mean :func:`surface_sdf` of shapes that decoded to no surface (0
            when every shape has one).
    """
    l_rgb = (renders["rgb"] - target_rgb).pow(2).mean()
    l_mask = (renders["alpha"] - target_alpha).pow(2).mean()
    covered = ((renders["alpha"] > 0) | (target_alpha > 0.5)).to(target_depth.dtype)
    l_depth = ((renders["depth"] - target_depth).pow(2) * covered).sum() / covered.sum().clamp_min(
        1.0
    )
    kl = posterior.kl().mean()
    l_dev = torch.stack([s.l_dev for s in shapes]).mean()
    l_sdf = torch.stack([sdf_sign_regularizer(s.sdf, s.grid_edges) for s in shapes]).mean()
    l_empty = empty_surface if empty_surface is not None else kl * 0.0
    loss = (
        config.lambda_rgb * l_rgb
        + config.lambda_mask * l_mask
        + config.lambda_depth * l_depth
        + config.lambda_kl * kl
        + config.lambda_dev * l_dev
        + config.lambda_sdf_reg * l_sdf
        + config.lambda_empty_surface * l_empty
    )
    return {
        "loss": loss,
        "rgb": l_rgb,
        "mask": l_mask,
        "depth": l_depth,
        "kl": kl,
        "dev": l_dev,
        "sdf_reg": l_sdf,
        "empty_surface": l_empty,
    }


__all__ = ["autoencoder_loss", "render_shapes"]

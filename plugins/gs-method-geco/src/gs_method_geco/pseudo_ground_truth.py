"""Pseudo ground truth of stage II (Sec. 3.2, 4.1): per condition image ``y`` and noise ``z``, a
deterministic DDIM sample of the teacher from ``z`` (75 steps, CFG 4), reconstructed by the
pretrained LGM, rendered at random views: the dataset ``D = (z, {I_i^syn(z)})``.

"Deterministic" needs one more fixed draw than the start noise: the teacher's reference
attention noises the condition latent at every call. It is drawn once per object from the same
generator (``encode_reference(fixed_noise=True)``'s convention), so ``(y, z)`` maps to one
sample. Only condition images and teacher outputs are used: never ground-truth novel views.

Stored as one safetensors file (``save_pseudo_ground_truth``), written atomically.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch

from gs_core.cameras import Cameras
from gs_core.errors import FileFormatError
from gs_core.rendering import render
from gs_priors.samplers import sample
from gs_priors.zero123plus import untile_views

KEYS = ("images", "noise", "viewmats", "Ks", "rgb")


def random_views(
    n: int,
    elevation_range: tuple[float, float],
    radius: float,
    fov_deg: float,
    size: int,
    generator: torch.Generator | None = None,
) -> Cameras:
    """``n`` cameras ``[n]``: azimuth uniform on the circle, elevation uniform in the range."""
    u = torch.rand(2, n, generator=generator, device=generator.device if generator else None)
    u = u.cpu().double()
    lo, hi = elevation_range
    return Cameras.orbit(
        azimuths_deg=(u[0] * 360.0).tolist(),
        elevations_deg=(lo + (hi - lo) * u[1]).tolist(),
        radius=radius,
        fov_deg=fov_deg,
        width=size,
        height=size,
    )


@torch.no_grad()
def teacher_views(model, teacher, images: torch.Tensor, generator: torch.Generator):
    """The teacher's deterministic sample: ``(noise [B, 4, h, w], views [B, 6, 3, v, v])``."""
    cfg = model.config
    cond = model.generator.encode_condition(images, generator)
    noise = model.generator.sample_noise(images.shape[0], generator)
    src = generator.device
    ref_noise = torch.randn(cond.reference_latents.shape, generator=generator, device=src)
    cond = dataclasses.replace(cond, reference_noise=ref_noise.to(cond.reference_latents))
    options = {}
    if cfg.teacher_timestep_spacing is not None:
        options["timestep_spacing"] = cfg.teacher_timestep_spacing
    result = sample(
        teacher,
        cond,
        tuple(noise.shape),
        sampler="ddim",
        steps=cfg.teacher_steps,
        guidance_scale=cfg.teacher_guidance_scale,
        noise=noise,
        **options,
    )
    return noise, untile_views(teacher.decode_latents(result.latents))


@torch.no_grad()
def pseudo_ground_truth(
    model, teacher, images: torch.Tensor, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Condition images ``[B, 4, H, W]`` -> ``{images, noise [B, 4, h, w], viewmats [B, N, 4, 4],
    Ks [B, N, 3, 3], rgb [B, N, 3, S, S]}`` with ``N = config.pseudo_views`` renders of the
    pretrained reconstructor's Gaussians of the teacher's views (``S = render_resolution``)."""
    cfg = model.config
    rc = cfg.reconstructor
    noise, views = teacher_views(model, teacher, images, generator)
    gaussians = model.reconstruct(views)
    vms, ks, rgbs = [], [], []
    for b in range(images.shape[0]):
        cams = random_views(
            cfg.pseudo_views,
            cfg.pseudo_elevation_range,
            rc.camera_radius,
            rc.fov_deg,
            cfg.render_resolution,
            generator,
        ).to(model.device)
        out = render(gaussians[b], cams, background=rc.background)
        vms.append(cams.viewmats)
        ks.append(cams.Ks)
        rgbs.append(out.rgb.permute(0, 3, 1, 2))
    return {
        "images": images.float().cpu(),
        "noise": noise.cpu(),
        "viewmats": torch.stack(vms).cpu(),
        "Ks": torch.stack(ks).cpu(),
        "rgb": torch.stack(rgbs).clamp(0, 1).cpu(),
    }


def merge(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([p[k] for p in parts]) for k in KEYS}


def pseudo_ground_truth_set(
    model,
    teacher,
    images: torch.Tensor,
    generator: torch.Generator,
    batch: int = 8,
) -> dict[str, torch.Tensor]:
    """The whole dataset ``D`` for condition images ``[B, 4, H, W]``: ``config.pseudo_noises``
    entries per image (each its own noise, teacher sample and renders; an image's entries are
    adjacent), made ``batch`` entries per teacher call on the model's device."""
    entries = images.repeat_interleave(model.config.pseudo_noises, dim=0)
    parts = [
        pseudo_ground_truth(model, teacher, chunk.to(model.device), generator)
        for chunk in entries.split(batch)
    ]
    return merge(parts)


def save_pseudo_ground_truth(path: str | Path, data: dict[str, torch.Tensor]) -> Path:
    """Write ``data`` (as :func:`pseudo_ground_truth` returns) to one safetensors file."""
    from gs_core.io.atomic import atomic_path
    from gs_core.io.tensor_file import save_tensors

    path = Path(path)
    with atomic_path(path) as tmp:
        save_tensors({k: data[k].contiguous() for k in KEYS}, str(tmp))
    return path


def load_pseudo_ground_truth(path: str | Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(path, "missing (write it with save_pseudo_ground_truth)")
    try:
        data = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise FileFormatError(path, f"not a readable safetensors file ({e})") from None
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise FileFormatError(path, f"missing tensors {missing} (expected {list(KEYS)})")
    n = data["images"].shape[0]
    if any(data[k].shape[0] != n for k in KEYS) or not math.isfinite(float(data["rgb"].sum())):
        raise FileFormatError(path, "tensors of different object counts or non-finite renders")
    return data


__all__ = [
    "load_pseudo_ground_truth",
    "merge",
    "pseudo_ground_truth",
    "random_views",
    "save_pseudo_ground_truth",
    "teacher_views",
]

"""The teachers' shared VAE, trained on procedural views before any teacher.

Reconstruction (L1 + MSE) with a small KL weight, as the latent-diffusion autoencoders are
trained, minus the perceptual and adversarial terms (their networks would need pretrained
weights). Object pixels weigh :data:`OBJECT_WEIGHT` times the background's: procedural views are
mostly background, and an unweighted loss reached 30 dB over the image with the objects'
colours washed out (measured 2026-12-01: every teacher trained on that VAE drew grey objects).
The returned ``psnr_object`` scores the object pixels alone. Its latent scaling factor is set from the trained latents' standard deviation, as
Stable Diffusion's 0.18215 was, so the teachers' noise schedules see unit-variance latents.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gs_priors.teachers.data import ViewBank

KL_WEIGHT = 1e-6
OBJECT_WEIGHT = 8.0


def _batch(bank: ViewBank, b: int, generator: torch.Generator) -> torch.Tensor:
    """Views ``[b, 4, H, W]``: RGB composited on a background, and the alpha."""
    dev = bank.rgba.device
    obj = torch.randint(bank.num_objects, (b,), generator=generator, device=dev)
    view = torch.randint(bank.views_per_object, (b,), generator=generator, device=dev)
    x = bank.images(obj, view)
    # Composite on white or on Zero123++'s gray, the two backgrounds the priors use.
    bg = torch.where(
        torch.rand(b, 1, 1, 1, device=dev, generator=generator) < 0.5,
        torch.ones((), device=dev),
        torch.full((), 127 / 255, device=dev),
    )
    return torch.cat([x[:, :3] * x[:, 3:] + bg * (1 - x[:, 3:]), x[:, 3:]], dim=1)


def train_vae(
    vae,
    banks: list[ViewBank],
    seconds: float | None = None,
    steps: int | None = None,
    batch_size: int = 64,
    lr: float = 4e-4,
    log: Callable[[str], None] = print,
    seed: int = 0,
) -> dict:
    """Train ``vae`` (``diffusers.AutoencoderKL``) on views of ``banks`` (images are resized to
    ``vae.config.sample_size``); returns the measured reconstruction PSNR (whole image and
    object pixels) and sets
    ``vae.config.scaling_factor``."""
    if seconds is None and steps is None:
        raise ValueError("give seconds or steps")
    dev = next(vae.parameters()).device
    size = int(vae.config.sample_size)
    gen = torch.Generator(dev).manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    vae.train().requires_grad_(True)
    t0 = time.perf_counter()
    n = 0
    per_bank = max(1, batch_size // len(banks))

    def resized(x: torch.Tensor) -> torch.Tensor:  # [B, 4, h, w] -> [B, 4, size, size]
        if x.shape[-1] == size:
            return x
        return F.interpolate(x, (size, size), mode="bilinear", antialias=True, align_corners=False)

    def images() -> torch.Tensor:
        return torch.cat([resized(_batch(b, per_bank, gen)) for b in banks])

    while True:
        batch = images()
        x, weight = 2 * batch[:, :3] - 1, 1 + (OBJECT_WEIGHT - 1) * batch[:, 3:]
        with torch.autocast(dev.type, torch.bfloat16, enabled=dev.type == "cuda"):
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample()).sample.float()
        kl = post.kl().mean() / x[0].numel()
        err = rec - x
        loss = (weight * (err.abs() + err.pow(2))).mean() / weight.mean() + KL_WEIGHT * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        n += 1
        elapsed = time.perf_counter() - t0
        if n % 200 == 0:
            log(f"vae step {n} loss {loss.item():.4f} {n * x.shape[0] / elapsed:.0f} images/s")
        if (steps is not None and n >= steps) or (seconds is not None and elapsed >= seconds):
            break
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        batch = images()
        x, alpha = 2 * batch[:, :3] - 1, batch[:, 3:]
        z = vae.encode(x).latent_dist.mode()
        rec = vae.decode(z).sample.clamp(-1, 1)
        sq = ((rec - x) / 2).pow(2)
        mse = sq.mean(dim=(1, 2, 3))
        psnr = float((-10 * torch.log10(mse.clamp_min(1e-10))).mean())
        obj = (sq * alpha).sum(dim=(1, 2, 3)) / (3 * alpha.sum(dim=(1, 2, 3))).clamp_min(1.0)
        psnr_object = float((-10 * torch.log10(obj.clamp_min(1e-10))).mean())
        std = float(z.float().std())
    vae.register_to_config(scaling_factor=1.0 / std)
    return {
        "steps": n,
        "seconds": time.perf_counter() - t0,
        "psnr": psnr,
        "psnr_object": psnr_object,
        "latent_std": std,
    }

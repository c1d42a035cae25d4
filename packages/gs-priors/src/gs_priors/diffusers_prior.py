"""Shared machinery of priors backed by a diffusers VAE + U-Net (Stable Diffusion, Zero123, ...).

Subclasses load their extra components, build their conditions and implement
``model_output`` / ``null_condition`` through :meth:`DiffusersPrior.unet_forward`, which
handles the weight dtype and which LoRA adapter (if any) is active - so the same U-Net serves
as a frozen teacher and, with an adapter, as a VSD student.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_priors.prior import PREDICTION_TYPES


def load_component(loader, directory: Path, subfolder: str, **kwargs: Any):
    """``loader.from_pretrained(directory / subfolder)`` offline, with one clear error."""
    path = directory / subfolder
    try:
        return loader.from_pretrained(str(path), local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        if isinstance(e, OSError | FileNotFoundError):
            raise WeightsNotFoundError(
                f"{path}: could not load {loader.__name__} ({first})"
            ) from None
        raise FileFormatError(path, f"does not hold a {loader.__name__} ({first})") from None


def scheduler_from_dir(directory: Path):
    """The model's noise schedule as a DDIM scheduler (same alphas as its training scheduler)."""
    from diffusers import DDIMScheduler

    return load_component(DDIMScheduler, directory, "scheduler")


class DiffusersPrior(nn.Module):
    """A latent diffusion prior: VAE encoder/decoder, U-Net, and the training noise schedule.

    Args:
        vae: ``diffusers.AutoencoderKL``; unet: ``diffusers.UNet2DConditionModel``.
        scheduler: any diffusers scheduler (only its ``alphas_cumprod``, timestep count and
            ``prediction_type`` are used).
        image_size: the side the model was trained at (images are resized to it).
        latent_scaling: multiply VAE latents by this (SD's ``scaling_factor``); ``None`` reads
            the VAE config.
        latent_sample: ``"sample"`` the VAE posterior (DreamGaussian, threestudio) or take its
            ``"mode"``.

    All weights are frozen; ``trainable_parameters()`` lists what an added LoRA adapter or a
    student copy trains.
    """

    def __init__(
        self,
        vae: nn.Module,
        unet: nn.Module,
        scheduler: Any,
        image_size: int | None = None,
        latent_scaling: float | None = None,
        latent_sample: Literal["sample", "mode"] = "sample",
    ):
        super().__init__()
        self.vae = vae
        self.unet = unet
        self.vae.requires_grad_(False)
        self.unet.requires_grad_(False)
        self.vae.eval()
        self.unet.eval()
        prediction_type = scheduler.config.prediction_type
        if prediction_type not in PREDICTION_TYPES:
            raise ValidationError(
                "scheduler.prediction_type", f"one of {PREDICTION_TYPES}", repr(prediction_type)
            )
        self._prediction_type = prediction_type
        self._num_train_timesteps = int(scheduler.config.num_train_timesteps)
        # Kept outside the module's buffers so `.half()` can never round the schedule.
        self._alphas_cpu = scheduler.alphas_cumprod.detach().to(torch.float32).cpu()
        self._alphas_cache: dict[torch.device, torch.Tensor] = {}
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.image_size = (
            int(image_size)
            if image_size is not None
            else int(unet.config.sample_size) * self.vae_scale_factor
        )
        self.latent_scaling = float(
            latent_scaling if latent_scaling is not None else vae.config.scaling_factor
        )
        if latent_sample not in ("sample", "mode"):
            raise ValidationError("latent_sample", "'sample' or 'mode'", repr(latent_sample))
        self.latent_sample = latent_sample
        self._active_adapter: str | None = None

    # ------------------------------------------------------------------ protocol
    @property
    def num_train_timesteps(self) -> int:
        return self._num_train_timesteps

    @property
    def prediction_type(self) -> str:
        return self._prediction_type

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        dev = self.device
        if dev not in self._alphas_cache:
            self._alphas_cache[dev] = self._alphas_cpu.to(dev)
        return self._alphas_cache[dev]

    def _register_clip_preprocessing(
        self, size: int, mean: tuple[float, ...], std: tuple[float, ...]
    ) -> None:
        """The CLIP image encoder's input size and normalisation (from its preprocessor)."""
        self.clip_size = int(size)
        self.register_buffer("clip_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("clip_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def _resize(self, images: torch.Tensor, size: int) -> torch.Tensor:
        if images.shape[-2:] == (size, size):
            return images
        return F.interpolate(images, (size, size), mode="bilinear", align_corners=False)

    def _check_images(
        self, images: torch.Tensor, field: str = "images", background: float = 1.0
    ) -> torch.Tensor:
        if (
            not isinstance(images, torch.Tensor)
            or images.ndim != 4
            or images.shape[1] not in (3, 4)
        ):
            got = (
                f"shape {tuple(images.shape)}"
                if isinstance(images, torch.Tensor)
                else type(images).__name__
            )
            raise ValidationError(
                field, "images [B, 3, H, W] (or RGBA [B, 4, H, W]) in [0, 1]", got
            )
        if images.shape[1] == 4:
            # RGBA: composite on the background the prior was trained with (white for most).
            rgb, a = images[:, :3], images[:, 3:]
            images = rgb * a + background * (1 - a)
        return images

    def encode_images(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> scaled latents (float32), differentiable."""
        moments = self.vae.encode(self.encoder_input(images)).latent_dist.parameters
        return self.latents_from_moments(moments, generator)

    # The two halves of encode_images, for callers that run the VAE encoder their own way
    # (DreamGaussian replays it from CUDA graphs).
    def encoder_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3|4, H, W]`` in ``[0, 1]`` -> the VAE encoder's input: resized to
        :attr:`image_size`, in ``[-1, 1]``, in the VAE's dtype."""
        x = self._resize(self._check_images(images), self.image_size)
        return (2 * x - 1).to(self.dtype)

    def latents_from_moments(
        self, moments: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """VAE posterior moments ``[B, 2C, h, w]`` -> scaled latents (float32)."""
        return (self._posterior_latent(moments, generator) * self.latent_scaling).float()

    def _posterior_latent(
        self, moments: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """A posterior sample of ``moments`` (the mode with ``latent_sample="mode"``), in the
        VAE's dtype."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        dist = DiagonalGaussianDistribution(moments)
        return dist.sample(generator) if self.latent_sample == "sample" else dist.mode()

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.vae.decode((latents / self.latent_scaling).to(self.dtype)).sample
        return (x.float() / 2 + 0.5).clamp(0, 1)

    # ------------------------------------------------------------------ U-Net and adapters
    def _has_adapters(self) -> bool:
        return bool(getattr(self.unet, "_hf_peft_config_loaded", False))

    @contextmanager
    def adapter(self, name: str | None):
        """Run the U-Net with LoRA adapter ``name`` active (``None``: the pretrained weights)."""
        prev = self._active_adapter
        self._active_adapter = name
        try:
            yield self
        finally:
            self._active_adapter = prev

    def unet_forward(self, sample: torch.Tensor, t: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """``unet(sample, t, **kwargs).sample`` in the weight dtype, returned as float32."""
        if self._has_adapters():
            if self._active_adapter is None:
                self.unet.disable_adapters()
            else:
                self.unet.enable_adapters()
                self.unet.set_adapter(self._active_adapter)
        dtype = self.dtype
        kwargs = {
            k: (v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in kwargs.items()
        }
        out = self.unet(sample.to(dtype), t, **kwargs).sample
        return out.float()

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

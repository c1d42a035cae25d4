"""Zero123 image + camera guidance as DreamGaussian uses it (``ashawkey/zero123-xl-diffusers``,
``ashawkey/stable-zero123-diffusers``).

Conditioning (Zero-1-to-3, Liu et al. 2023, section 3.2; diffusers' Zero1to3 community
pipeline; DreamGaussian ``guidance/zero123_utils.py``):

* cross-attention context: ``proj([CLIP(x_ref), T])`` ``[B, 1, 768]``, where ``CLIP`` is the
  CLIP ViT-L/14 image embedding ``[B, 1, 768]``, ``T`` the relative camera ``[B, 1, 4]`` and
  ``proj`` the learned ``Linear(772, 768)`` (``clip_camera_projection``);
* the input image's VAE latent (posterior mode, *not* multiplied by the scaling factor - the
  model was trained that way) concatenated on channels with the noisy latent (8 channels in);
* the unconditional branch zeroes both the context and the image latent.

The relative camera. Zero123 takes ``[d_polar (rad), sin d_azimuth, cos d_azimuth, d_radius]``
where the polar angle grows *downwards* from the pole. In gs_core's convention (elevation
positive above the equator, azimuth growing towards +x, see :mod:`gs_core.cameras`) the first
entry is therefore ``-d_elevation``; DreamGaussian's elevation is positive downwards, which is
why it passes its delta unchanged. Azimuth directions agree. Stable Zero123 replaces the last
entry with the reference view's polar angle ``90 deg - elevation_ref`` (in radians).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import FileFormatError, ValidationError
from gs_priors.diffusers_prior import DiffusersPrior, load_component, scheduler_from_dir
from gs_priors.model_dir import resolve_model_dir
from gs_priors.prior import Condition

COMPONENTS = (
    "vae",
    "unet",
    "image_encoder",
    "feature_extractor",
    "clip_camera_projection",
    "scheduler",
)

DEFAULT_MODEL_ID = "ashawkey/zero123-xl-diffusers"
# CLIP's preprocessing statistics, used when feature_extractor/preprocessor_config.json omits them.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _camera_projection_class():
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.modeling_utils import ModelMixin

    class CLIPCameraProjection(ModelMixin, ConfigMixin):
        """``Linear(embedding_dim + additional_embeddings, embedding_dim)`` - Zero123's
        ``cc_projection`` (772 -> 768 for CLIP ViT-L/14), stored as ``proj``."""

        @register_to_config
        def __init__(self, embedding_dim: int = 768, additional_embeddings: int = 4):
            super().__init__()
            self.proj = nn.Linear(embedding_dim + additional_embeddings, embedding_dim)

        def forward(self, embedding: torch.Tensor) -> torch.Tensor:
            return self.proj(embedding)

    return CLIPCameraProjection


_PROJECTION_CLASS = None


def camera_projection_class():
    """The diffusers model class of ``clip_camera_projection`` (built on first use)."""
    global _PROJECTION_CLASS
    if _PROJECTION_CLASS is None:
        _PROJECTION_CLASS = _camera_projection_class()
    return _PROJECTION_CLASS


@dataclass(frozen=True)
class Zero123Reference(Condition):
    """The encoded input view: CLIP embedding ``[R, 1, D]`` and unscaled VAE latent ``[R, 4, h, w]``."""

    clip_embeds: torch.Tensor
    image_latents: torch.Tensor


@dataclass(frozen=True)
class Zero123Condition(Condition):
    """Projected image+camera context ``[B, 1, D]`` and the reference latent ``[B, 4, h, w]``."""

    embeddings: torch.Tensor
    image_latents: torch.Tensor


def zero123_camera(
    d_elevation: torch.Tensor,
    d_azimuth: torch.Tensor,
    d_radius: torch.Tensor,
    variant: Literal["zero123", "stable_zero123"] = "zero123",
    reference_elevation: float | torch.Tensor = 0.0,
) -> torch.Tensor:
    """Zero123's relative camera ``[B, 4]`` from gs_core-convention deltas in degrees.

    ``zero123``: ``[rad(-d_elev), sin rad(d_azim), cos rad(d_azim), d_radius]``;
    ``stable_zero123``: the last entry is ``rad(90 - reference_elevation)``.
    """
    dev = next(
        (x.device for x in (d_elevation, d_azimuth, d_radius) if isinstance(x, torch.Tensor)),
        None,
    )
    d_elevation, d_azimuth, d_radius = torch.broadcast_tensors(
        torch.as_tensor(d_elevation, dtype=torch.float32, device=dev),
        torch.as_tensor(d_azimuth, dtype=torch.float32, device=dev),
        torch.as_tensor(d_radius, dtype=torch.float32, device=dev),
    )
    d_elevation, d_azimuth, d_radius = (
        d_elevation.flatten(),
        d_azimuth.flatten(),
        d_radius.flatten(),
    )
    az = torch.deg2rad(d_azimuth)
    if variant == "zero123":
        last = d_radius
    elif variant == "stable_zero123":
        ref = torch.as_tensor(reference_elevation, dtype=torch.float32, device=d_elevation.device)
        last = torch.deg2rad(90.0 - ref).expand_as(d_elevation)
    else:
        raise ValidationError("variant", "'zero123' or 'stable_zero123'", repr(variant))
    return torch.stack([torch.deg2rad(-d_elevation), torch.sin(az), torch.cos(az), last], dim=-1)


class Zero123Guidance(DiffusersPrior):
    """Zero123 / Stable Zero123 as a :class:`~gs_priors.prior.DiffusionPrior`.

    Usage::

        z123 = Zero123Guidance.from_pretrained("ashawkey/zero123-xl-diffusers", device="cuda", dtype=torch.float16)
        ref = z123.encode_reference(input_rgba)                  # once per input image
        cond = z123.camera_condition(ref, d_elev, d_azim, d_radius)  # per rendered view
        loss = SDS(z123, SDSConfig(guidance_scale=5.0))(renders, cond)["sds"]  # gs_losses
    """

    def __init__(
        self,
        vae,
        unet,
        image_encoder,
        camera_projection,
        scheduler,
        clip_size: int = 224,
        clip_mean: tuple[float, ...] = CLIP_MEAN,
        clip_std: tuple[float, ...] = CLIP_STD,
        variant: Literal["zero123", "stable_zero123"] = "zero123",
        **kwargs,
    ):
        kwargs.setdefault("latent_scaling", None)
        super().__init__(vae, unet, scheduler, **kwargs)
        if variant not in ("zero123", "stable_zero123"):
            raise ValidationError("variant", "'zero123' or 'stable_zero123'", repr(variant))
        self.image_encoder = image_encoder
        self.camera_projection = camera_projection
        for m in (self.image_encoder, self.camera_projection):
            m.requires_grad_(False)
            m.eval()
        self.variant = variant
        self._register_clip_preprocessing(clip_size, clip_mean, clip_std)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL_ID,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        variant: Literal["auto", "zero123", "stable_zero123"] = "auto",
        **kwargs,
    ) -> Zero123Guidance:
        """Load a Zero123 diffusers directory or hub repo (offline-safe, no random init).

        ``variant="auto"`` picks the Stable Zero123 camera embedding when the name contains
        "stable", as DreamGaussian does.
        """
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPVisionModelWithProjection

        directory = resolve_model_dir(name_or_path, COMPONENTS)
        if variant == "auto":
            variant = "stable_zero123" if "stable" in str(name_or_path).lower() else "zero123"
        vae = load_component(AutoencoderKL, directory, "vae", torch_dtype=dtype)
        unet = load_component(UNet2DConditionModel, directory, "unet", torch_dtype=dtype)
        image_encoder = load_component(
            CLIPVisionModelWithProjection, directory, "image_encoder", dtype=dtype
        )
        projection = load_component(
            camera_projection_class(), directory, "clip_camera_projection", torch_dtype=dtype
        )
        scheduler = scheduler_from_dir(directory)
        if unet.config.in_channels != 2 * vae.config.latent_channels:
            raise FileFormatError(
                directory / "unet",
                f"a Zero123 U-Net takes {2 * vae.config.latent_channels} input channels (noisy + image latent), "
                f"this one {unet.config.in_channels}",
            )
        clip_size, mean, std = _read_preprocessor(directory / "feature_extractor")
        return cls(
            vae,
            unet,
            image_encoder,
            projection,
            scheduler,
            clip_size=clip_size,
            clip_mean=mean,
            clip_std=std,
            variant=variant,
            **kwargs,
        ).to(device)

    # ------------------------------------------------------------------ conditioning
    @torch.no_grad()
    def encode_reference(
        self, images: torch.Tensor, image_latents: torch.Tensor | None = None
    ) -> Zero123Reference:
        """Input view(s) ``[R, 3|4, H, W]`` in ``[0, 1]`` (RGBA is composited on white).

        ``image_latents`` ``[R, 4, h, w]``: the inputs' unscaled VAE latents
        (:meth:`reference_latents`) when already computed (a trainer caches them per view).
        """
        x = self._check_images(images, "reference").to(self.device)
        clip_in = F.interpolate(
            x, (self.clip_size, self.clip_size), mode="bicubic", align_corners=False, antialias=True
        )
        clip_in = (clip_in.clamp(0, 1) - self.clip_mean) / self.clip_std
        embeds = self.image_encoder(clip_in.to(self.dtype)).image_embeds.float().unsqueeze(1)
        if image_latents is None:
            image_latents = self.reference_latents(x)
        return Zero123Reference(clip_embeds=embeds, image_latents=image_latents.float())

    def reference_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Unscaled VAE latents (posterior mode) ``[R, 4, h, w]`` of input views, as the model
        was trained to take them."""
        x = self._check_images(images, "reference").to(self.device)
        lat_in = self._resize(x, self.image_size)
        return self.vae.encode((2 * lat_in - 1).to(self.dtype)).latent_dist.mode().float()

    @torch.no_grad()
    def camera_condition(
        self,
        reference: Zero123Reference,
        d_elevation: float | torch.Tensor,
        d_azimuth: float | torch.Tensor,
        d_radius: float | torch.Tensor = 0.0,
        reference_elevation: float = 0.0,
    ) -> Zero123Condition:
        """Condition for target views at the given offsets from the reference view.

        Args:
            reference: from :meth:`encode_reference` (batch 1 or one per camera).
            d_elevation, d_azimuth: ``[B]`` degrees, gs_core convention (see module docstring).
            d_radius: ``[B]`` change of camera distance (Zero123; unused by Stable Zero123).
            reference_elevation: elevation of the input view in degrees (Stable Zero123).
        """
        from gs_core.devices import to_device_async

        # Score distillation builds a condition every step: the copy must not stall the host.
        cam = to_device_async(
            zero123_camera(d_elevation, d_azimuth, d_radius, self.variant, reference_elevation),
            self.device,
        )
        b = cam.shape[0]
        ref = reference.expand_batch(b)
        context = torch.cat([ref.clip_embeds.to(self.device), cam.unsqueeze(1)], dim=-1)
        embeddings = self.camera_projection(context.to(self.dtype)).float()
        return Zero123Condition(
            embeddings=embeddings, image_latents=ref.image_latents.to(self.device)
        )

    def null_condition(self, condition: Zero123Condition) -> Zero123Condition:
        return Zero123Condition(
            embeddings=torch.zeros_like(condition.embeddings),
            image_latents=torch.zeros_like(condition.image_latents),
        )

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: Zero123Condition
    ) -> torch.Tensor:
        if not isinstance(condition, Zero123Condition):
            raise ValidationError(
                "condition",
                "a Zero123Condition (Zero123Guidance.camera_condition)",
                type(condition).__name__,
            )
        sample = torch.cat([latents_t, condition.image_latents.to(latents_t)], dim=1)
        return self.unet_forward(
            sample, t, encoder_hidden_states=condition.embeddings.to(latents_t.device)
        )


def _read_preprocessor(folder: Path) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """CLIP input size, mean and std from a ``CLIPImageProcessor`` config."""
    cfg_path = folder / "preprocessor_config.json"
    if not cfg_path.is_file():
        raise FileFormatError(
            folder, "no preprocessor_config.json (the CLIP image processor config)"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise FileFormatError(cfg_path, f"not valid JSON ({e})") from None
    crop = cfg.get("crop_size", 224)
    size = (
        crop.get("height", crop.get("shortest_edge", 224)) if isinstance(crop, dict) else int(crop)
    )
    mean = tuple(float(v) for v in cfg.get("image_mean", CLIP_MEAN))
    std = tuple(float(v) for v in cfg.get("image_std", CLIP_STD))
    if len(mean) != 3 or len(std) != 3 or not all(math.isfinite(v) and v > 0 for v in std):
        raise FileFormatError(cfg_path, "image_mean / image_std must hold 3 values (std > 0)")
    return int(size), mean, std

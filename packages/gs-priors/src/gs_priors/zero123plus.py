"""Zero123++ v1.1 / v1.2 (Shi et al. 2023; ``sudo-ai/zero123plus-v1.1``, ``-v1.2``) as a
:class:`~gs_priors.prior.DiffusionPrior`, the teacher GECO distils.

Built on diffusers / transformers classes, with our own code for what the official custom
pipeline (``SUDO-AI-3D/zero123plus``, ``diffusers-support/pipeline.py``) does; nothing runs with
``trust_remote_code``:

* six 320x320 views tiled 3 rows x 2 columns into one 960x640 image (row-major: view ``k`` at
  row ``k // 2``, column ``k % 2``), at azimuths 30, 90, ..., 330 relative to the input and
  absolute elevations alternating 30 / -20 (v1.1) or 20 / -10 (v1.2, field of view 30 deg);
* v-prediction on the checkpoint's own noise schedule (``scheduler/scheduler_config.json``:
  linear betas 0.00085..0.012, where Stable Diffusion used scaled-linear);
* target images scaled in image space, ``x * 0.5 / 0.8`` on ``[-1, 1]`` before the VAE (and
  ``/ (0.5 / 0.8)`` after decoding), and their latents scaled and shifted,
  ``(z * scaling_factor - 0.22) * 0.75``;
* the condition image on a gray background (127), normalised by ``feature_extractor_vae``
  (v1.2: mean 0.5, std 0.8 - the same image-space scaling), VAE-encoded (posterior sample,
  *not* multiplied by the scaling factor) and, at every denoiser call, noised to the call's
  timestep with fresh noise;
* reference attention: that noised condition latent runs through the U-Net first (the "write"
  pass), and every self-attention layer of the real pass (the "read" pass) attends to its own
  tokens concatenated with the tokens the same layer saw in the write pass;
* the cross-attention context: the text encoder's hidden states of the prompt (empty by
  default) plus the CLIP image embedding ``[B, 1, D]`` times the learned per-token
  ``ramping_coefficients`` ``[L]`` (stored in ``model_index.json``);
* classifier-free guidance (scale 4 in the official pipeline): the unconditional branch is the
  empty prompt without the image embedding and, as reference, the VAE latent of an all-zero
  normalised image (uniform gray).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import FileFormatError, GS3DError, ValidationError
from gs_core.hub import parse_hub_ref, resolve_pretrained
from gs_priors.diffusers_prior import DiffusersPrior, load_component, scheduler_from_dir
from gs_priors.model_dir import resolve_model_dir
from gs_priors.prior import Condition
from gs_priors.text_states import clip_text_states

COMPONENTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler", "vision_encoder")
# Image-processor configs only; model_dir's weight check must not ask them for weights.
PROCESSORS = ("feature_extractor_clip", "feature_extractor_vae")

DEFAULT_MODEL_ID = "sudo-ai/zero123plus-v1.1"
VERSIONS = ("v1.1", "v1.2")

VIEW_SIZE = 320
GRID_ROWS, GRID_COLS = 3, 2
NUM_VIEWS = GRID_ROWS * GRID_COLS
# (relative azimuth, absolute elevation) in degrees, in grid order (official README).
VIEWS: dict[str, tuple[tuple[float, float], ...]] = {
    "v1.1": tuple((30.0 + 60.0 * k, 30.0 if k % 2 == 0 else -20.0) for k in range(NUM_VIEWS)),
    "v1.2": tuple((30.0 + 60.0 * k, 20.0 if k % 2 == 0 else -10.0) for k in range(NUM_VIEWS)),
}
# v1.2 fixes the output field of view; v1.1's follows the input's.
FOV_DEG: dict[str, float | None] = {"v1.1": None, "v1.2": 30.0}

LATENT_SHIFT = 0.22
LATENT_SCALE = 0.75
IMAGE_SCALE = 0.5 / 0.8
# The official pipeline pastes RGBA inputs on uint8 gray 127.
GRAY = 127.0 / 255.0
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# ---------------------------------------------------------------------------- views and grid
def tile_views(views: torch.Tensor) -> torch.Tensor:
    """``[B, 6, C, h, w]`` views in Zero123++ order -> the ``[B, C, 3h, 2w]`` grid image."""
    if views.ndim != 5 or views.shape[1] != NUM_VIEWS:
        raise ValidationError("views", f"[B, {NUM_VIEWS}, C, h, w]", str(tuple(views.shape)))
    b, _, c, h, w = views.shape
    grid = views.reshape(b, GRID_ROWS, GRID_COLS, c, h, w).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(b, c, GRID_ROWS * h, GRID_COLS * w)


def untile_views(grid: torch.Tensor) -> torch.Tensor:
    """``[B, C, 3h, 2w]`` grid image (or latents) -> ``[B, 6, C, h, w]`` views."""
    if grid.ndim != 4 or grid.shape[-2] % GRID_ROWS or grid.shape[-1] % GRID_COLS:
        raise ValidationError("grid", f"[B, C, {GRID_ROWS}h, {GRID_COLS}w]", str(tuple(grid.shape)))
    b, c, hh, ww = grid.shape
    h, w = hh // GRID_ROWS, ww // GRID_COLS
    views = grid.reshape(b, c, GRID_ROWS, h, GRID_COLS, w).permute(0, 2, 4, 1, 3, 5)
    return views.reshape(b, NUM_VIEWS, c, h, w)


def square_resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, C, size, size]`` in [0, 1]: shortest side to ``size``, then the
    centre square (CLIPImageProcessor's steps, which the official pipeline applies to its
    condition image)."""
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    rh, rw = max(size, round(h * scale)), max(size, round(w * scale))
    if (rh, rw) != (h, w):
        x = F.interpolate(x, (rh, rw), mode=mode, align_corners=False, antialias=True)
    top, left = (rh - size) // 2, (rw - size) // 2
    return x[..., top : top + size, left : left + size].clamp(0, 1)


def _check_version(version: str) -> str:
    if version not in VERSIONS:
        raise ValidationError("version", f"one of {VERSIONS}", repr(version))
    return version


def zero123plus_cameras(
    version: str = "v1.1",
    input_azimuth_deg: float = 0.0,
    radius: float = 1.5,
    fov_deg: float | None = None,
    size: int = VIEW_SIZE,
):
    """The six output cameras as :class:`gs_core.Cameras` ``[6]`` (gs_core orbit convention),
    azimuths relative to the input's. v1.1 has no fixed field of view: pass ``fov_deg``."""
    from gs_core.cameras import Cameras

    views = VIEWS[_check_version(version)]
    fov = fov_deg if fov_deg is not None else FOV_DEG[version]
    if fov is None:
        raise ValidationError(
            "fov_deg", f"a field of view for Zero123++ {version} (only v1.2 fixes it)", "None"
        )
    return Cameras.orbit(
        azimuths_deg=[input_azimuth_deg + az for az, _ in views],
        elevations_deg=[el for _, el in views],
        radius=radius,
        fov_deg=fov,
        width=size,
        height=size,
    )


# ---------------------------------------------------------------------------- reference attention
class ReferenceAttention:
    """State shared by one U-Net's reference-attention processors.

    ``mode``: ``"off"`` (plain self-attention), ``"write"`` (record each self-attention input
    under its processor name) or ``"read"`` (attend to own tokens + the recorded ones).
    """

    def __init__(self) -> None:
        self.mode: Literal["off", "write", "read"] = "off"
        self.bank: dict[str, torch.Tensor] = {}

    @contextmanager
    def running(self, mode: Literal["write", "read"]):
        self.mode = mode
        try:
            yield
        finally:
            self.mode = "off"


class ReferenceAttnProcessor:
    """Self-attention processor of Zero123++'s reference attention, wrapping the U-Net's own
    processor ``inner``: in the read pass its keys and values come from ``[x; x_ref]``,
    tokens ``[B, N + N_ref, C]``, with ``x_ref`` the same layer's input in the write pass."""

    def __init__(self, name: str, state: ReferenceAttention, inner: Any):
        self.name = name
        self.state = state
        self.inner = inner

    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        mode = self.state.mode
        if mode == "write":
            self.state.bank[self.name] = hidden_states
        elif mode == "read":
            ref = self.state.bank.pop(self.name, None)
            if ref is None:
                raise GS3DError(f"reference attention {self.name}: read pass without a write pass")
            context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
            encoder_hidden_states = torch.cat([context, ref.to(context.dtype)], dim=1)
        return self.inner(
            attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs
        )


def install_reference_attention(unet: nn.Module) -> ReferenceAttention:
    """Wrap every self-attention (``attn1``) processor of a diffusers U-Net; idempotent.

    The state is kept on the U-Net (``unet.reference_attention``) so that a deep copy of the
    U-Net (a VSD student) carries its own state together with its own processors.
    """
    state = getattr(unet, "reference_attention", None)
    if isinstance(state, ReferenceAttention):
        return state
    state = ReferenceAttention()
    processors = {}
    for name, proc in unet.attn_processors.items():
        wrap = name.endswith("attn1.processor")
        processors[name] = ReferenceAttnProcessor(name, state, proc) if wrap else proc
    if not any(isinstance(p, ReferenceAttnProcessor) for p in processors.values()):
        raise ValidationError("unet", "a U-Net with self-attention (attn1) layers", "none")
    unet.set_attn_processor(processors)
    unet.reference_attention = state
    return state


# ---------------------------------------------------------------------------- condition
@dataclass(frozen=True)
class Zero123PlusCondition(Condition):
    """Conditioning of Zero123++ for one input image per item.

    * ``embeddings`` ``[B, L, D]``: prompt hidden states + ramped CLIP image embedding;
    * ``reference_latents`` ``[B, 4, h_r, w_r]``: unscaled VAE latent of the condition image;
    * ``null_embeddings`` / ``null_reference_latents``: the unconditional counterparts;
    * ``reference_noise`` ``[B, 4, h_r, w_r]`` or ``None``: noise for the reference latent. ``None``
      (the official behaviour) draws fresh noise at every call from torch's default generator;
      a fixed tensor makes the denoiser a deterministic function of ``(x_t, t)``.
    """

    embeddings: torch.Tensor
    reference_latents: torch.Tensor
    null_embeddings: torch.Tensor
    null_reference_latents: torch.Tensor
    reference_noise: torch.Tensor | None = None


# ---------------------------------------------------------------------------- paper-size layout
# The official components' configurations (SD2 768-v U-Net, SD VAE, OpenCLIP ViT-H text tower,
# CLIP ViT-H/14 image tower); test_zero123plus.py checks the layouts they build against the
# official checkpoint's keys, shapes and parameter counts.
PAPER_CONFIGS: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 96,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": (
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        "up_block_types": (
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        "block_out_channels": (320, 640, 1280, 1280),
        "layers_per_block": 2,
        "attention_head_dim": (5, 10, 20, 20),
        "cross_attention_dim": 1024,
        "use_linear_projection": True,
    },
    "vae": {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 4,
        "sample_size": 768,
        "scaling_factor": 0.18215,
    },
    "text_encoder": {
        "vocab_size": 49408,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 23,
        "num_attention_heads": 16,
        "max_position_embeddings": 77,
        "hidden_act": "gelu",
        "projection_dim": 512,
    },
    "vision_encoder": {
        "hidden_size": 1280,
        "intermediate_size": 5120,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 14,
        "projection_dim": 1024,
        "hidden_act": "gelu",
    },
}


def build_modules(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, nn.Module]:
    """The four networks from configurations shaped like :data:`PAPER_CONFIGS`, freshly
    initialised (build under ``torch.device("meta")`` to inspect a layout without memory)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    return {
        "unet": UNet2DConditionModel(**configs["unet"]),
        "vae": AutoencoderKL(**configs["vae"]),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        "vision_encoder": CLIPVisionModelWithProjection(
            CLIPVisionConfig(**configs["vision_encoder"])
        ),
    }


def official_scheduler():
    """The scheduler Zero123++ v1.1 / v1.2 ship (``scheduler/scheduler_config.json``): Euler
    ancestral over 1,000 linear betas from 0.00085 to 0.012, v-prediction, ``linspace`` timestep
    spacing, steps offset 1."""
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        prediction_type="v_prediction",
        timestep_spacing="linspace",
        steps_offset=1,
    )


# ---------------------------------------------------------------------------- the prior
class ZeroReferenceMoments:
    """The VAE posterior moments ``[1, 2C, h, w]`` of the all-zero normalised reference image,
    Zero123++'s unconditional reference, computed once per size, device and dtype.

    The VAE is frozen, so every call would encode the same image to the same moments (at paper
    size 1.1 TFLOP, about 6% of GECO's one-step generation); a posterior sample of the cached
    moments draws exactly what encoding anew draws. The cache empties when the VAE (or a module
    holding it) loads a state dict.
    """

    def __init__(self, vae: torch.nn.Module):
        self.vae = vae
        self._cache: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}
        vae.register_load_state_dict_post_hook(self._forget)

    def _forget(self, module, incompatible_keys) -> None:
        self._cache.clear()

    @torch.no_grad()
    def __call__(self, size: int, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        key = (int(size), torch.device(device), dtype)
        if key not in self._cache:
            x = torch.zeros(1, 3, size, size, device=device, dtype=dtype)
            self._cache[key] = self.vae.encode(x).latent_dist.parameters
        return self._cache[key]


class Zero123PlusGuidance(DiffusersPrior):
    """Zero123++ as a :class:`~gs_priors.prior.DiffusionPrior` over the 3x2 grid latent.

    Usage::

        zpp = Zero123PlusGuidance.from_pretrained("sudo-ai/zero123plus-v1.1", device="cuda",
                                                  dtype=torch.float16)
        cond = zpp.encode_reference(input_rgba)                  # [1, 4, H, W] in [0, 1]
        v = zpp.model_output(latents_t, t, cond)                 # [B, 4, 120, 80]
        result = gs_priors.samplers.sample(zpp, cond, zpp.latent_shape(1), guidance_scale=4.0,
                                           steps=75, timestep_spacing="trailing")
        views = untile_views(zpp.decode_latents(result.latents))  # [1, 6, 3, 320, 320]

    Latents ``[B, 4, 3 v / f, 2 v / f]`` for view size ``v`` and VAE factor ``f`` are the
    scaled, shifted latents the U-Net denoises (see the module docstring).
    """

    def __init__(
        self,
        vae,
        unet,
        text_encoder,
        tokenizer,
        vision_encoder,
        scheduler,
        ramping_coefficients: torch.Tensor | list[float],
        clip_size: int = 224,
        clip_mean: tuple[float, ...] = CLIP_MEAN,
        clip_std: tuple[float, ...] = CLIP_STD,
        reference_size: int = 512,
        reference_mean: tuple[float, ...] = (0.5, 0.5, 0.5),
        reference_std: tuple[float, ...] = (0.8, 0.8, 0.8),
        view_size: int = VIEW_SIZE,
        version: str = "v1.1",
        **kwargs,
    ):
        super().__init__(vae, unet, scheduler, image_size=view_size, **kwargs)
        self.version = _check_version(version)
        factor = self.vae_scale_factor
        if view_size % factor:
            raise ValidationError(
                "view_size", f"a multiple of the VAE factor {factor}", str(view_size)
            )
        self.view_size = int(view_size)
        self.scheduler_config = dict(scheduler.config)
        # The frozen text encoder gives the same states for a prompt on every call, and the
        # frozen VAE the same moments for the all-zero reference: both are computed once.
        self._text_cache: dict[tuple[str, torch.device], torch.Tensor] = {}
        text_encoder.register_load_state_dict_post_hook(lambda *_: self._text_cache.clear())
        self._zero_moments = ZeroReferenceMoments(vae)
        self.text_encoder = text_encoder
        self.vision_encoder = vision_encoder
        for m in (text_encoder, vision_encoder):
            m.requires_grad_(False)
            m.eval()
        self.tokenizer = tokenizer
        ramp = torch.as_tensor(ramping_coefficients, dtype=torch.float32).flatten()
        length = int(tokenizer.model_max_length)
        if ramp.numel() != length:
            raise ValidationError(
                "ramping_coefficients",
                f"one coefficient per text token ({length})",
                f"{ramp.numel()} coefficients",
            )
        # Plain float32 tensors, not buffers: `.to(torch.bfloat16)` must not round them.
        self.ramping = ramp
        self.clip_size = int(clip_size)
        self.reference_size = int(reference_size)
        self.clip_mean, self.clip_std, self.reference_mean, self.reference_std = (
            torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1)
            for v in (clip_mean, clip_std, reference_mean, reference_std)
        )
        install_reference_attention(self.unet)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL_ID,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        version: Literal["auto", "v1.1", "v1.2"] = "auto",
        view_size: int = VIEW_SIZE,
        **kwargs,
    ) -> Zero123PlusGuidance:
        """Load a Zero123++ diffusers directory or hub repo (offline-safe, no random init).

        ``version="auto"`` reads it from the name (``...v1.2`` -> v1.2, else v1.1); it only
        sets the camera metadata (:data:`VIEWS`, :data:`FOV_DEG`), everything the networks need
        comes from the checkpoint's configs.
        """
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

        directory = resolve_model_dir(name_or_path, COMPONENTS)
        _resolve_processors(name_or_path, directory)
        if version == "auto":
            version = "v1.2" if "1.2" in str(name_or_path) else "v1.1"
        ramp = _read_ramping(directory / "model_index.json")
        vae = load_component(AutoencoderKL, directory, "vae", torch_dtype=dtype)
        unet = load_component(UNet2DConditionModel, directory, "unet", torch_dtype=dtype)
        text_encoder = load_component(CLIPTextModel, directory, "text_encoder", dtype=dtype)
        tokenizer = load_component(CLIPTokenizer, directory, "tokenizer")
        vision_encoder = load_component(
            CLIPVisionModelWithProjection, directory, "vision_encoder", dtype=dtype
        )
        scheduler = scheduler_from_dir(directory)
        latent = vae.config.latent_channels
        if unet.config.in_channels != latent:
            raise FileFormatError(
                directory / "unet",
                f"a Zero123++ U-Net takes the {latent}-channel latent alone, "
                f"this one {unet.config.in_channels} channels",
            )
        width = text_encoder.config.hidden_size
        if (
            vision_encoder.config.projection_dim != width
            or unet.config.cross_attention_dim != width
        ):
            raise FileFormatError(
                directory,
                f"the image embedding ({vision_encoder.config.projection_dim}), text states "
                f"({width}) and U-Net context ({unet.config.cross_attention_dim}) must share one width",
            )
        if len(ramp) != tokenizer.model_max_length:
            raise FileFormatError(
                directory / "model_index.json",
                f"ramping_coefficients holds {len(ramp)} values, the tokenizer "
                f"{tokenizer.model_max_length} tokens",
            )
        clip_size, clip_mean, clip_std = _read_image_processor(directory / "feature_extractor_clip")
        ref_size, ref_mean, ref_std = _read_image_processor(directory / "feature_extractor_vae")
        return cls(
            vae,
            unet,
            text_encoder,
            tokenizer,
            vision_encoder,
            scheduler,
            ramping_coefficients=ramp,
            clip_size=clip_size,
            clip_mean=clip_mean,
            clip_std=clip_std,
            reference_size=ref_size,
            reference_mean=ref_mean,
            reference_std=ref_std,
            view_size=view_size,
            version=version,
            **kwargs,
        ).to(device)

    # ------------------------------------------------------------------ geometry
    @property
    def grid_size(self) -> tuple[int, int]:
        """``(height, width)`` of the tiled image: ``(3 v, 2 v)``."""
        return GRID_ROWS * self.view_size, GRID_COLS * self.view_size

    def latent_shape(self, batch_size: int = 1) -> tuple[int, int, int, int]:
        h, w = self.grid_size
        f = self.vae_scale_factor
        return (batch_size, self.vae.config.latent_channels, h // f, w // f)

    @property
    def views(self) -> tuple[tuple[float, float], ...]:
        """(relative azimuth, absolute elevation) of the six views, in grid order."""
        return VIEWS[self.version]

    # ------------------------------------------------------------------ images <-> latents
    def _rgb(self, images: torch.Tensor, field: str) -> torch.Tensor:
        return self._check_images(images, field, background=GRAY)

    def encode_images(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Grid images ``[B, 3, H, W]`` in ``[0, 1]`` (resized to :attr:`grid_size`) -> scaled,
        shifted latents ``[B, 4, 3v/f, 2v/f]`` (float32, differentiable)."""
        x = self._rgb(images, "images")
        if tuple(x.shape[-2:]) != self.grid_size:
            x = F.interpolate(x, self.grid_size, mode="bilinear", align_corners=False)
        dist = self.vae.encode(((2 * x - 1) * IMAGE_SCALE).to(self.dtype)).latent_dist
        z = dist.sample(generator) if self.latent_sample == "sample" else dist.mode()
        return (z.float() * self.latent_scaling - LATENT_SHIFT) * LATENT_SCALE

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, 4, h, w]`` -> grid images ``[B, 3, f h, f w]`` in ``[0, 1]``."""
        z = (latents.float() / LATENT_SCALE + LATENT_SHIFT) / self.latent_scaling
        x = self.vae.decode(z.to(self.dtype)).sample.float() / IMAGE_SCALE
        return (x / 2 + 0.5).clamp(0, 1)

    # ------------------------------------------------------------------ conditioning
    @torch.no_grad()
    def _text_states(self, prompt: str) -> torch.Tensor:
        key = (prompt, self.device)
        if key not in self._text_cache:
            if len(self._text_cache) >= 16:
                self._text_cache.clear()
            self._text_cache[key] = self._encode_text(prompt)
        return self._text_cache[key]

    def _encode_text(self, prompt: str) -> torch.Tensor:
        return clip_text_states(self.tokenizer, self.text_encoder, [prompt], self.device)

    def _vae_sample(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        moments = self.vae.encode(x.to(self.dtype)).latent_dist.parameters
        return self._posterior_latent(moments, generator).float()

    @torch.no_grad()
    def encode_reference(
        self,
        images: torch.Tensor,
        prompt: str = "",
        generator: torch.Generator | None = None,
        fixed_noise: bool = False,
        reference_latents: torch.Tensor | None = None,
    ) -> Zero123PlusCondition:
        """Condition images ``[R, 3|4, H, W]`` in ``[0, 1]`` (RGBA composited on gray 127;
        square inputs as the official pipeline expects) -> :class:`Zero123PlusCondition` ``[R]``.

        ``generator`` seeds the VAE posterior samples and, with ``fixed_noise``, the one
        reference noise reused at every call (a deterministic denoiser, e.g. for DDIM teacher
        trajectories); without it each call draws fresh noise, as the official pipeline does.
        ``reference_latents`` ``[R, 4, h_r, w_r]``: :meth:`reference_latents` of the images when
        already computed (a trainer caches them).
        """
        x = self._rgb(images, "reference").to(self.device).float()
        r = x.shape[0]
        clip_in = square_resize(x, self.clip_size, "bicubic")
        dev = x.device
        clip_in = (clip_in - self.clip_mean.to(dev)) / self.clip_std.to(dev)
        image_embeds = self.vision_encoder(clip_in.to(self.dtype)).image_embeds.float()
        if reference_latents is None:
            reference_latents = self.reference_latents(x, generator)
        reference = reference_latents.to(dev).float()
        # The unconditional reference: the latent of an all-zero normalised image, a posterior
        # sample of the cached moments (the same draw as encoding it anew).
        moments = self._zero_moments(self.reference_size, dev, self.dtype)
        null_reference = self._posterior_latent(moments, generator).float()
        null_reference = null_reference.expand(r, -1, -1, -1)
        text = self._text_states(prompt).expand(r, -1, -1)
        null_text = self._text_states("").expand(r, -1, -1)
        embeddings = text + image_embeds[:, None, :] * self.ramping.to(dev)[None, :, None]
        noise = None
        if fixed_noise:
            noise = torch.randn(
                reference.shape,
                generator=generator,
                device=generator.device if generator is not None else reference.device,
            ).to(reference.device)
        return Zero123PlusCondition(
            embeddings=embeddings,
            reference_latents=reference,
            null_embeddings=null_text.contiguous(),
            null_reference_latents=null_reference,
            reference_noise=noise,
        )

    def reference_latents(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The condition images' unscaled VAE latents ``[R, 4, h_r, w_r]`` (square crop at the
        reference size, normalised by ``feature_extractor_vae``, posterior sampled)."""
        x = self._rgb(images, "reference").to(self.device).float()
        ref_in = square_resize(x, self.reference_size, "bilinear")
        ref_in = (ref_in - self.reference_mean.to(x.device)) / self.reference_std.to(x.device)
        return self._vae_sample(ref_in, generator)

    def null_condition(self, condition: Zero123PlusCondition) -> Zero123PlusCondition:
        return Zero123PlusCondition(
            embeddings=condition.null_embeddings,
            reference_latents=condition.null_reference_latents,
            null_embeddings=condition.null_embeddings,
            null_reference_latents=condition.null_reference_latents,
            reference_noise=condition.reference_noise,
        )

    def model_output(
        self, latents_t: torch.Tensor, t: torch.Tensor, condition: Zero123PlusCondition
    ) -> torch.Tensor:
        """v-prediction ``[B, 4, h, w]`` (float32): a write pass over the condition latent
        noised to ``t`` (``[B]`` integer timesteps), then the read pass over ``latents_t``."""
        if not isinstance(condition, Zero123PlusCondition):
            raise ValidationError(
                "condition",
                "a Zero123PlusCondition (Zero123PlusGuidance.encode_reference)",
                type(condition).__name__,
            )
        device = latents_t.device
        t = t.to(device)
        reference = condition.reference_latents.to(device=device, dtype=torch.float32)
        noise = condition.reference_noise
        noise = torch.randn_like(reference) if noise is None else noise.to(reference)
        ab = self.alphas_cumprod[t.long()].view(-1, 1, 1, 1)
        noisy_reference = ab.sqrt() * reference + (1 - ab).sqrt() * noise
        context = condition.embeddings.to(device)
        state = install_reference_attention(self.unet)
        try:
            with state.running("write"):
                self.unet_forward(noisy_reference, t, encoder_hidden_states=context)
            with state.running("read"):
                return self.unet_forward(latents_t, t, encoder_hidden_states=context)
        finally:
            state.bank.clear()


# ---------------------------------------------------------------------------- checkpoint files
def _resolve_processors(name_or_path: str | Path, directory: Path) -> None:
    """Fetch (hub) or find (local) the two image-processor configs; one clear error if absent."""
    if parse_hub_ref(name_or_path) is not None:
        resolve_pretrained(
            name_or_path,
            allow_patterns=[f"{p}/*.json" for p in PROCESSORS],
            what="Zero123++ image-processor configs",
        )
    missing = [p for p in PROCESSORS if not (directory / p / "preprocessor_config.json").is_file()]
    if missing:
        raise FileFormatError(
            directory,
            f"not a complete Zero123++ directory: missing {[f'{p}/preprocessor_config.json' for p in missing]}",
        )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileFormatError(path, "missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FileFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise FileFormatError(path, "expected a JSON object")
    return data


def _read_ramping(path: Path) -> list[float]:
    value = _read_json(path).get("ramping_coefficients")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in value)
    ):
        raise FileFormatError(
            path, "expected 'ramping_coefficients': a list of finite numbers (one per text token)"
        )
    return [float(v) for v in value]


def _three(value: Any, path: Path, field: str) -> tuple[float, float, float]:
    values = [value] * 3 if isinstance(value, int | float) else value
    if (
        not isinstance(values, list | tuple)
        or len(values) != 3
        or not all(isinstance(v, int | float) and math.isfinite(v) for v in values)
    ):
        raise FileFormatError(path, f"'{field}' must be a number or 3 numbers, got {value!r}")
    return tuple(float(v) for v in values)


def _read_image_processor(folder: Path) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """Square input size, mean and std of a ``CLIPImageProcessor`` config (scalars allowed)."""
    path = folder / "preprocessor_config.json"
    cfg = _read_json(path)
    crop = cfg.get("crop_size", cfg.get("size"))
    if isinstance(crop, dict):
        crop = crop.get("height", crop.get("shortest_edge"))
    if not isinstance(crop, int) or crop <= 0:
        raise FileFormatError(
            path, f"'crop_size' must be a positive int or {{height, width}}, got {crop!r}"
        )
    mean = _three(cfg.get("image_mean"), path, "image_mean")
    std = _three(cfg.get("image_std"), path, "image_std")
    if min(std) <= 0:
        raise FileFormatError(path, "'image_std' must be positive")
    return crop, mean, std


__all__ = [
    "COMPONENTS",
    "DEFAULT_MODEL_ID",
    "FOV_DEG",
    "PAPER_CONFIGS",
    "VIEWS",
    "ReferenceAttention",
    "ReferenceAttnProcessor",
    "Zero123PlusCondition",
    "Zero123PlusGuidance",
    "build_modules",
    "install_reference_attention",
    "square_resize",
    "tile_views",
    "untile_views",
    "zero123plus_cameras",
]

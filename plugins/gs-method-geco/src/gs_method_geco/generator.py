"""GECO's one-step multi-view generator G (Sec. 3.1): Zero123++'s U-Net run once, at the last
training timestep, from pure noise, with classifier-free guidance inside.

Differences from the teacher's denoiser call (``gs_priors.zero123plus.Zero123PlusGuidance``):

* reference attention reads the *clean* condition latent ("we directly used the self-attention
  matrices of the clean condition image to preserve the information"), where the teacher noises
  it to the call's timestep;
* the raw v-prediction is converted to an x0-prediction (``x0 = sqrt(ab) x_T - sqrt(1 - ab) v``),
  so G's output is a clean latent grid;
* the prompt is always empty, so its text states are stored as a buffer (``prompt_states``)
  instead of a text encoder and tokenizer.

Shapes: noise and outputs are the 3x2 grid latent ``[B, 4, 3 v / f, 2 v / f]`` of view size ``v``
and VAE factor ``f``; decoded views ``[B, 6, 3, v, v]`` in Zero123++ order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gs_core.devices import to_device_async
from gs_core.errors import GS3DError, ValidationError
from gs_method_geco.config import GeneratorConfig
from gs_priors.zero123plus import (
    GRAY,
    IMAGE_SCALE,
    LATENT_SCALE,
    LATENT_SHIFT,
    Zero123PlusCondition,
    ZeroReferenceMoments,
    install_reference_attention,
    square_resize,
    untile_views,
)


def alphas_cumprod(config: GeneratorConfig) -> torch.Tensor:
    """``alpha_bar_t`` ``[T]`` (float64) of the teacher's training schedule."""
    n = config.num_train_timesteps
    if config.beta_schedule == "linear":
        betas = torch.linspace(
            config.beta_start, config.beta_end, n, dtype=torch.float64, device="cpu"
        )
    else:
        betas = (
            torch.linspace(
                config.beta_start**0.5, config.beta_end**0.5, n, dtype=torch.float64, device="cpu"
            )
            ** 2
        )
    return torch.cumprod(1.0 - betas, dim=0)


def _require(value, field: str):
    if value is None:
        raise ValidationError(
            f"GeneratorConfig.{field}",
            "a network layout (null means the teacher's: build with GECO.from_teacher or "
            "scripts/train_small.py)",
            "None",
        )
    return value


class OneStepGenerator(nn.Module):
    """G: ``(noise [B, 4, h, w], condition) -> x0 latents [B, 4, h, w]``; see the module docstring.

    Holds the Zero123++ U-Net (trained), its VAE and CLIP image tower (frozen), the empty
    prompt's text states and the ramping coefficients of the image embedding (buffers).
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        self.config = config
        self.unet = UNet2DConditionModel.from_config(dict(_require(config.unet, "unet")))
        self.vae = AutoencoderKL.from_config(dict(_require(config.vae, "vae")))
        vision = dict(_require(config.vision_encoder, "vision_encoder"))
        self.vision_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**vision))
        width = int(self.unet.config.cross_attention_dim)
        if self.vision_encoder.config.projection_dim != width:
            raise ValidationError(
                "GeneratorConfig.vision_encoder.projection_dim",
                f"the U-Net's context width {width}",
                str(self.vision_encoder.config.projection_dim),
            )
        self.vae.requires_grad_(False)
        self.vision_encoder.requires_grad_(False)
        self._zero_moments = ZeroReferenceMoments(self.vae)
        self.register_buffer("prompt_states", torch.randn(1, config.prompt_tokens, width) * 0.02)
        self.register_buffer("ramping", torch.ones(config.prompt_tokens))
        # Float32 outside the buffers: a bf16 cast of the module must not round the schedule.
        self._alphas = alphas_cumprod(config).float()
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        if config.view_size % self.vae_scale_factor:
            raise ValidationError(
                "GeneratorConfig.view_size",
                f"a multiple of the VAE factor {self.vae_scale_factor}",
                str(config.view_size),
            )
        install_reference_attention(self.unet)

    # ------------------------------------------------------------------ geometry
    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def latent_shape(self, batch_size: int = 1) -> tuple[int, int, int, int]:
        v, f = self.config.view_size, self.vae_scale_factor
        return (batch_size, int(self.vae.config.latent_channels), 3 * v // f, 2 * v // f)

    def final_alpha(self) -> float:
        """``alpha_bar`` at the last training timestep ``T - 1``, where G runs (a Python number,
        so a CUDA-graph capture of G copies nothing from the host)."""
        return float(self._alphas[-1])

    # ------------------------------------------------------------------ teacher weights
    @torch.no_grad()
    def load_teacher(self, teacher) -> OneStepGenerator:
        """Copy a :class:`~gs_priors.zero123plus.Zero123PlusGuidance`'s U-Net, VAE, image
        tower, empty-prompt states and ramping into G (Sec. 4.1: G starts as Zero123++)."""
        ab = teacher.alphas_cumprod.detach().cpu().float()
        if ab.shape != self._alphas.shape or not torch.allclose(ab, self._alphas, atol=1e-5):
            raise ValidationError(
                "teacher", "the noise schedule of GeneratorConfig", "a different alphas_cumprod"
            )
        if teacher.prediction_type != self.config.prediction_type:
            raise ValidationError(
                "teacher.prediction_type", self.config.prediction_type, teacher.prediction_type
            )
        for name in ("unet", "vae"):
            getattr(self, name).load_state_dict(getattr(teacher, name).state_dict())
        self.vision_encoder.load_state_dict(teacher.vision_encoder.state_dict())
        states = teacher._text_states("")
        if states.shape[1:] != self.prompt_states.shape[1:]:
            raise ValidationError(
                "GeneratorConfig.prompt_tokens",
                f"the teacher's text states {tuple(states.shape[1:])}",
                str(tuple(self.prompt_states.shape[1:])),
            )
        self.prompt_states.copy_(states)
        self.ramping.copy_(teacher.ramping)
        return self

    # ------------------------------------------------------------------ condition
    @torch.no_grad()
    def encode_condition(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> Zero123PlusCondition:
        """Condition images ``[B, 3|4, H, W]`` in ``[0, 1]`` (RGBA composited on gray 127) ->
        :class:`Zero123PlusCondition` ``[B]``, computed as the teacher's ``encode_reference``
        (same random draws from ``generator``), with ``reference_noise=None``: G never noises
        the reference, and the teacher noises it afresh at each call."""
        if (
            not isinstance(images, torch.Tensor)
            or images.ndim != 4
            or images.shape[1] not in (3, 4)
        ):
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValidationError("images", "[B, 3|4, H, W] in [0, 1]", str(got))
        x = images.to(self.device).float()
        draws = self.condition_draws(x.shape[0], generator)
        emb, ref, null_emb, null_ref = self.condition_tensors(x, *draws)
        return Zero123PlusCondition(
            embeddings=emb,
            reference_latents=ref,
            null_embeddings=null_emb,
            null_reference_latents=null_ref,
            reference_noise=None,
        )

    def condition_draws(
        self, batch_size: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The standard normals of :meth:`encode_condition`'s two VAE posterior samples, drawn
        from ``generator`` in its order and as diffusers' ``DiagonalGaussianDistribution.sample``
        draws them (shape of the posterior mean, the VAE's dtype, on the generator's device):
        the reference's ``[B, C, r, r]``, then the null reference's ``[1, C, r, r]``. Drawn
        apart from :meth:`condition_tensors` so that the encoding can replay as a CUDA graph."""
        c = self.vae.config.latent_channels
        r = self.config.reference_size // self.vae_scale_factor
        src = generator.device if generator is not None else self.device
        dtype = self.vae.dtype
        return tuple(
            torch.randn((n, c, r, r), generator=generator, device=src, dtype=dtype).to(self.device)
            for n in (batch_size, 1)
        )

    @torch.no_grad()
    def condition_tensors(
        self, x: torch.Tensor, reference_draw: torch.Tensor, null_draw: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Float images ``[B, 3|4, H, W]`` on G's device and :meth:`condition_draws` ->
        ``(embeddings, reference_latents, null_embeddings, null_reference_latents)``. No host
        tensor and no random draw inside (its constants move to the device on the first call),
        so ``generate`` records it as a CUDA graph."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        cfg = self.config
        if x.shape[1] == 4:
            x = x[:, :3] * x[:, 3:] + GRAY * (1 - x[:, 3:])
        k = self._constants(x.device)
        clip_in = (square_resize(x, cfg.clip_size, "bicubic") - k["clip_mean"]) / k["clip_std"]
        image_embeds = self.vision_encoder(clip_in.to(self.dtype)).image_embeds.float()
        ref_in = (square_resize(x, cfg.reference_size, "bilinear") - k["ref_mean"]) / k["ref_std"]
        posterior = DiagonalGaussianDistribution(
            self.vae.encode(ref_in.to(self.dtype)).latent_dist.parameters
        )
        reference = (posterior.mean + posterior.std * reference_draw).float()
        # The unconditional reference: one latent of an all-zero normalised image, shared by the
        # batch (the teacher's convention), sampled from moments encoded once.
        null = DiagonalGaussianDistribution(
            self._zero_moments(cfg.reference_size, x.device, self.dtype)
        )
        null_reference = (null.mean + null.std * null_draw).float().expand(x.shape[0], -1, -1, -1)
        text = self.prompt_states.float().expand(x.shape[0], -1, -1)
        ramp = self.ramping.float()[None, :, None]
        return (
            text + image_embeds[:, None, :] * ramp,
            reference,
            text.contiguous(),
            null_reference,
        )

    def _constants(self, device: torch.device) -> dict[str, torch.Tensor]:
        # Kept out of the buffers, as the schedule is: a bf16 cast of the module must not round
        # the normalisation, and a host copy cannot run inside a CUDA-graph capture.
        cache = self.__dict__.setdefault("_device_constants", {})
        if device not in cache:
            cfg = self.config
            cache[device] = {
                name: to_device_async(torch.tensor(v, dtype=torch.float32).view(1, 3, 1, 1), device)
                for name, v in (
                    ("clip_mean", cfg.clip_mean),
                    ("clip_std", cfg.clip_std),
                    ("ref_mean", cfg.reference_mean),
                    ("ref_std", cfg.reference_std),
                )
            }
        return cache[device]

    # ------------------------------------------------------------------ G
    def forward(self, noise: torch.Tensor, condition: Zero123PlusCondition) -> torch.Tensor:
        """``noise [B, 4, h, w]`` -> x0 latents ``[B, 4, h, w]`` (float32, differentiable in the
        U-Net's weights): one guided U-Net call at ``t = T - 1``."""
        if not isinstance(condition, Zero123PlusCondition):
            raise ValidationError("condition", "a Zero123PlusCondition", type(condition).__name__)
        if tuple(noise.shape[1:]) != self.latent_shape()[1:]:
            raise ValidationError(
                "noise",
                f"[B, {', '.join(map(str, self.latent_shape()[1:]))}]",
                str(tuple(noise.shape)),
            )
        b = noise.shape[0]
        cond = condition.expand_batch(b)
        dev, dtype = noise.device, self.dtype
        guided = self.config.guidance_scale != 1.0
        if guided:
            x = torch.cat([noise, noise])
            context = torch.cat([cond.null_embeddings, cond.embeddings])
            reference = torch.cat([cond.null_reference_latents, cond.reference_latents])
        else:
            x, context, reference = noise, cond.embeddings, cond.reference_latents
        n = x.shape[0]
        t = torch.full((n,), self.config.num_train_timesteps - 1, device=dev, dtype=torch.long)
        t_ref = t if self.config.reference_timestep == "same" else torch.zeros_like(t)
        context = context.to(dev, dtype)
        state = install_reference_attention(self.unet)
        try:
            with state.running("write"):
                self.unet(reference.to(dev, dtype), t_ref, encoder_hidden_states=context)
            with state.running("read"):
                out = self.unet(x.to(dtype), t, encoder_hidden_states=context).sample.float()
        finally:
            state.bank.clear()
        if guided:
            uncond, conditional = out.chunk(2)
            out = uncond + self.config.guidance_scale * (conditional - uncond)
        ab = self.final_alpha()
        x_t = noise.float()
        if self.config.prediction_type == "v_prediction":
            return math.sqrt(ab) * x_t - math.sqrt(1 - ab) * out
        if self.config.prediction_type == "epsilon":
            return (x_t - math.sqrt(1 - ab) * out) / math.sqrt(ab)
        return out

    # ------------------------------------------------------------------ latents -> views
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled, shifted grid latents ``[B, 4, h, w]`` -> six views ``[B, 6, 3, v, v]`` in
        ``[0, 1]`` (differentiable; the VAE stays frozen)."""
        z = (latents.float() / LATENT_SCALE + LATENT_SHIFT) / self.vae.config.scaling_factor
        x = self.vae.decode(z.to(self.dtype)).sample.float() / IMAGE_SCALE
        return untile_views((x / 2 + 0.5).clamp(0, 1))

    def sample_noise(self, batch_size: int, generator: torch.Generator | None) -> torch.Tensor:
        """Start noise ``[B, 4, h, w]`` (float32) on G's device, drawn from ``generator``."""
        src = generator.device if generator is not None else self.device
        shape = self.latent_shape(batch_size)
        return torch.randn(shape, generator=generator, device=src).to(self.device)


def check_teacher_layout(generator: OneStepGenerator, teacher) -> None:
    """Fail with one line when ``teacher``'s latent grid differs from G's."""
    if tuple(teacher.latent_shape(1)) != generator.latent_shape(1):
        raise GS3DError(
            f"teacher latents {tuple(teacher.latent_shape(1))} differ from the generator's "
            f"{generator.latent_shape(1)}: load the teacher with view_size="
            f"{generator.config.view_size}"
        )


__all__ = ["OneStepGenerator", "alphas_cumprod", "check_teacher_layout"]

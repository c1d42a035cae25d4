"""The multi-view U-Net of MVDream / ImageDream (SD 2.1 base sizes), with the official layout.

What makes it multi-view (MVDream, Shi et al. 2023; ImageDream, Wang & Shi 2023):

* the batch is frame-major: ``x [B * F, C, h, w]`` holds the ``F`` frames of object ``b`` at
  rows ``b * F .. b * F + F - 1``;
* every transformer's self-attention is *joint* across the frames of an object: tokens
  ``(B * F, L, C)`` are regrouped to ``(B, F * L, C)`` before attention and back after, so each
  view sees every other view; cross-attention and the feed-forward stay per frame;
* a camera MLP (``camera_embed``: ``Linear(camera_dim, 4c) -> SiLU -> Linear(4c, 4c)``) maps
  each frame's flattened 4x4 camera ``[B * F, 16]`` to a vector *added* to the timestep
  embedding, which every residual block receives;
* ImageDream (``ip_dim > 0``): the input image is an extra frame - its clean VAE latent
  replaces the last frame of each object (``ip_img``) - and the image-prompt resampler
  (:mod:`gs_priors.image_prompt_resampler`, ``image_embed``) turns CLIP ViT-H patch features
  (``ip``) into ``ip_dim`` tokens that every cross-attention attends to through its own
  ``to_k_ip`` / ``to_v_ip``, added to the text attention with weight ``ip_weight``.

The rest is Stable Diffusion 2.1's LDM U-Net (``model_channels`` 320, ``channel_mult``
(1, 2, 4, 4), 2 residual blocks per level, attention at downsampling 1, 2, 4, 64-channel heads,
linear transformer projections, GEGLU feed-forward, context width 1024), epsilon prediction.

Module and parameter names are those of the official checkpoints (``sd-v2.1-base-4view-ipmv``
without the ``model.diffusion_model.`` prefix, and ``ashawkey/imagedream-ipmv-diffusers``'
``unet/``): ``time_embed``, ``camera_embed``, ``image_embed``, ``input_blocks.i.j``,
``middle_block.j``, ``output_blocks.i.j``, ``out``; residual blocks ``in_layers``,
``emb_layers``, ``out_layers``, ``skip_connection``; transformers ``norm``, ``proj_in``,
``transformer_blocks.k.{attn1, attn2, ff.net, norm1..3}``, ``proj_out``; ``op`` (downsample)
and ``conv`` (upsample). The constructor reads that checkpoint's ``unet/config.json`` as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from gs_core.errors import ValidationError
from gs_priors.image_prompt_resampler import ImagePromptResampler


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0):
    """Sinusoidal embedding ``[N, dim]`` of ``timesteps [N]``: ``[cos(t f_i), sin(t f_i)]`` with
    ``f_i = max_period^(-i / (dim / 2))`` (LDM's order: cosines first)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    args = timesteps.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """LDM residual block: ``GN-SiLU-conv``, plus the projected embedding, ``GN-SiLU-conv``.

    ``forward(x [N, C, h, w], emb [N, E])`` -> ``[N, C_out, h, w]``.
    """

    def __init__(self, channels: int, emb_channels: int, out_channels: int, groups: int = 32):
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(groups, out_channels),
            nn.SiLU(),
            nn.Dropout(0.0),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.out_layers[3].weight)
        nn.init.zeros_(self.out_layers[3].bias)
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        return self.skip_connection(x) + self.out_layers(h)


class Downsample(nn.Module):
    """Strided 3x3 convolution (``op``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 convolution (``conv``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Attention(nn.Module):
    """Multi-head attention with bias-free ``to_q / to_k / to_v`` and ``to_out.0``.

    With ``ip_dim > 0`` (ImageDream's cross-attention) it also attends to image-prompt tokens
    through ``to_k_ip`` / ``to_v_ip``; that result is added with weight ``ip_weight``.

    ``forward(x [N, L, C], context [N, M, Cc] | None, ip_tokens [N, Q, Cc] | None)`` ->
    ``[N, L, C]``; without ``context`` it is self-attention.
    """

    def __init__(
        self,
        query_dim: int,
        context_dim: int | None,
        num_heads: int,
        head_dim: int,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        inner = num_heads * head_dim
        context_dim = context_dim or query_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.ip_dim = ip_dim
        self.ip_weight = ip_weight
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        if ip_dim > 0:
            self.to_k_ip = nn.Linear(context_dim, inner, bias=False)
            self.to_v_ip = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        ip_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n, length, _ = x.shape
        ctx = x if context is None else context
        q = self._heads(self.to_q(x))
        out = F.scaled_dot_product_attention(
            q, self._heads(self.to_k(ctx)), self._heads(self.to_v(ctx))
        )
        if self.ip_dim > 0:
            if ip_tokens is None:
                raise ValidationError(
                    "ip_tokens", f"image-prompt tokens [N, {self.ip_dim}, C] (ImageDream)", "None"
                )
            out_ip = F.scaled_dot_product_attention(
                q, self._heads(self.to_k_ip(ip_tokens)), self._heads(self.to_v_ip(ip_tokens))
            )
            out = out + self.ip_weight * out_ip
        return self.to_out(out.transpose(1, 2).reshape(n, length, -1))


class GEGLU(nn.Module):
    """``Linear(dim, 2 * inner)`` split into value and gate: ``value * GELU(gate)``."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward with hidden width ``4 * dim`` (``net.0.proj``, ``net.2``)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            GEGLU(dim, dim * mult), nn.Dropout(0.0), nn.Linear(dim * mult, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiViewTransformerBlock(nn.Module):
    """Joint self-attention over the ``F`` frames of an object, per-frame cross-attention to
    the text (and image-prompt tokens), GEGLU feed-forward; pre-norm residuals.

    ``forward(x [B*F, L, C], context [B*F, M, Cc], ip_tokens [B*F, Q, Cc] | None, num_frames)``
    -> ``[B*F, L, C]``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        context_dim: int,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
    ):
        super().__init__()
        self.attn1 = Attention(dim, None, num_heads, head_dim)
        self.ff = FeedForward(dim)
        self.attn2 = Attention(dim, context_dim, num_heads, head_dim, ip_dim, ip_weight)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        ip_tokens: torch.Tensor | None,
        num_frames: int,
    ) -> torch.Tensor:
        bf, length, c = x.shape
        # (B*F, L, C) -> (B, F*L, C): every frame's tokens attend to all frames of its object.
        joint = self.norm1(x).reshape(bf // num_frames, num_frames * length, c)
        x = x + self.attn1(joint).reshape(bf, length, c)
        x = x + self.attn2(self.norm2(x), context, ip_tokens)
        return x + self.ff(self.norm3(x))


class SpatialTransformer3D(nn.Module):
    """GroupNorm, linear in-projection, transformer blocks, zero-initialised out-projection,
    residual. ``forward(x [B*F, C, h, w], context, ip_tokens, num_frames)`` -> same shape."""

    def __init__(
        self,
        channels: int,
        num_heads: int,
        head_dim: int,
        context_dim: int,
        depth: int = 1,
        ip_dim: int = 0,
        ip_weight: float = 1.0,
        groups: int = 32,
    ):
        super().__init__()
        inner = num_heads * head_dim
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, inner)
        self.transformer_blocks = nn.ModuleList(
            MultiViewTransformerBlock(inner, num_heads, head_dim, context_dim, ip_dim, ip_weight)
            for _ in range(depth)
        )
        self.proj_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        ip_tokens: torch.Tensor | None,
        num_frames: int,
    ) -> torch.Tensor:
        n, c, h, w = x.shape
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c))
        for block in self.transformer_blocks:
            t = block(t, context, ip_tokens, num_frames)
        t = self.proj_out(t)
        return x + t.reshape(n, h, w, c).permute(0, 3, 1, 2)


class UNetStage(nn.ModuleList):
    """One entry of ``input_blocks`` / ``middle_block`` / ``output_blocks``: its layers run in
    order, each given what it consumes (the embedding, the context, the frame count)."""

    def forward(self, x, emb, context, ip_tokens, num_frames):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer3D):
                x = layer(x, context, ip_tokens, num_frames)
            else:
                x = layer(x)
        return x


@dataclass
class MultiViewUNetOutput(BaseOutput):
    """``sample [B*F, C_out, h, w]``: the prediction (epsilon for the released checkpoints)."""

    sample: torch.Tensor


class MultiViewUNetModel(ModelMixin, ConfigMixin, PeftAdapterMixin):
    """MVDream / ImageDream multi-view U-Net (see the module docstring).

    Args (the names of the official ``unet/config.json``):
        image_size: latent side the model was trained at (32 for 256 px views).
        in_channels, out_channels: latent channels (4).
        model_channels: base width ``c`` (320); the time / camera embedding is ``4c``.
        num_res_blocks: residual blocks per level (2), or one count per level.
        attention_resolutions: downsampling factors with a transformer (4, 2, 1).
        channel_mult: width multipliers per level (1, 2, 4, 4).
        num_head_channels: width of an attention head (64); or give ``num_heads``.
        transformer_depth: transformer blocks per transformer (1).
        context_dim: width of the text context and image-prompt tokens (1024).
        camera_dim: flattened camera size (16); ``None`` builds no camera MLP.
        ip_dim: image-prompt tokens (ImageDream: 16; 0 for MVDream).
        ip_weight: weight of the image-prompt attention (1.0).
        norm_num_groups: GroupNorm groups (32; smaller only for tiny test models).
        ip_embedding_dim, ip_depth, ip_heads, ip_head_dim: the resampler's image-feature
            width (CLIP ViT-H/14: 1280), layers (4) and heads (12 of 64 channels).
    """

    @register_to_config
    def __init__(
        self,
        image_size: int = 32,
        in_channels: int = 4,
        out_channels: int = 4,
        model_channels: int = 320,
        num_res_blocks: int | Sequence[int] = 2,
        attention_resolutions: Sequence[int] = (4, 2, 1),
        channel_mult: Sequence[int] = (1, 2, 4, 4),
        num_head_channels: int = 64,
        num_heads: int = -1,
        transformer_depth: int = 1,
        context_dim: int = 1024,
        camera_dim: int | None = 16,
        ip_dim: int = 16,
        ip_weight: float = 1.0,
        norm_num_groups: int = 32,
        ip_embedding_dim: int = 1280,
        ip_depth: int = 4,
        ip_heads: int = 12,
        ip_head_dim: int = 64,
    ):
        super().__init__()
        levels = len(channel_mult)
        res_blocks = (
            [int(num_res_blocks)] * levels
            if isinstance(num_res_blocks, int)
            else [int(n) for n in num_res_blocks]
        )
        if len(res_blocks) != levels:
            raise ValidationError(
                "num_res_blocks", f"an int or one count per level ({levels})", str(num_res_blocks)
            )
        if num_head_channels <= 0 and num_heads <= 0:
            raise ValidationError("num_head_channels / num_heads", "one of them positive")
        attn_at = {int(r) for r in attention_resolutions}

        def heads(ch: int) -> tuple[int, int]:
            if num_head_channels > 0:
                return ch // num_head_channels, num_head_channels
            return num_heads, ch // num_heads

        def transformer(ch: int) -> SpatialTransformer3D:
            n, d = heads(ch)
            return SpatialTransformer3D(
                ch, n, d, context_dim, transformer_depth, ip_dim, ip_weight, norm_num_groups
            )

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(
            nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if camera_dim is not None:
            self.camera_embed = nn.Sequential(
                nn.Linear(camera_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
            )
        if ip_dim > 0:
            self.image_embed = ImagePromptResampler(
                dim=context_dim,
                depth=ip_depth,
                head_dim=ip_head_dim,
                num_heads=ip_heads,
                num_queries=ip_dim,
                embedding_dim=ip_embedding_dim,
                output_dim=context_dim,
            )

        self.input_blocks = nn.ModuleList(
            [UNetStage([nn.Conv2d(in_channels, model_channels, 3, padding=1)])]
        )
        skip_channels = [model_channels]
        ch, ds = model_channels, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(res_blocks[level]):
                layers: list[nn.Module] = [
                    ResBlock(ch, emb_dim, mult * model_channels, norm_num_groups)
                ]
                ch = mult * model_channels
                if ds in attn_at:
                    layers.append(transformer(ch))
                self.input_blocks.append(UNetStage(layers))
                skip_channels.append(ch)
            if level != levels - 1:
                self.input_blocks.append(UNetStage([Downsample(ch)]))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = UNetStage(
            [
                ResBlock(ch, emb_dim, ch, norm_num_groups),
                transformer(ch),
                ResBlock(ch, emb_dim, ch, norm_num_groups),
            ]
        )

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(res_blocks[level] + 1):
                layers = [
                    ResBlock(
                        ch + skip_channels.pop(), emb_dim, model_channels * mult, norm_num_groups
                    )
                ]
                ch = model_channels * mult
                if ds in attn_at:
                    layers.append(transformer(ch))
                if level and i == res_blocks[level]:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(UNetStage(layers))

        self.out = nn.Sequential(
            nn.GroupNorm(norm_num_groups, ch),
            nn.SiLU(),
            nn.Conv2d(model_channels, out_channels, 3, padding=1),
        )
        nn.init.zeros_(self.out[2].weight)
        nn.init.zeros_(self.out[2].bias)

    # ------------------------------------------------------------------ inputs
    def _check(self, name: str, value: torch.Tensor | None, rows: int, tail: str) -> None:
        if value is None or value.ndim < 1 or value.shape[0] != rows:
            got = "None" if value is None else f"shape {tuple(value.shape)}"
            dims = f"{rows}, {tail}" if tail else str(rows)
            raise ValidationError(name, f"[{dims}] (one row per frame)", got)

    def image_prompt_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """CLIP image features ``[N, P, ip_embedding_dim]`` -> tokens ``[N, ip_dim, context_dim]``."""
        if self.config.ip_dim <= 0:
            raise ValidationError("ip", "no image prompt: this U-Net has ip_dim 0 (MVDream)")
        return self.image_embed(features)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        camera: torch.Tensor | None = None,
        num_frames: int = 1,
        ip: torch.Tensor | None = None,
        ip_img: torch.Tensor | None = None,
        ip_tokens: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> MultiViewUNetOutput | torch.Tensor:
        """Denoise the frames of ``B`` objects jointly.

        Args:
            x: ``[B * F, C, h, w]`` noisy latents, frame-major (``F = num_frames``).
            timesteps: ``[B * F]`` (or a scalar) diffusion timesteps.
            context: ``[B * F, M, context_dim]`` text embeddings, one row per frame.
            camera: ``[B * F, camera_dim]`` flattened cameras (needed when ``camera_dim`` is set).
            ip: ``[B * F, P, ip_embedding_dim]`` CLIP image features for the resampler, or
            ip_tokens: ``[B * F, ip_dim, context_dim]`` tokens it already produced (ImageDream).
            ip_img: ``[B, C, h, w]`` clean latent of the input image: it replaces the last
                frame of each object, as the official forward does (ImageDream).

        Returns:
            ``[B * F, out_channels, h, w]`` (in a :class:`MultiViewUNetOutput` unless
            ``return_dict=False``).
        """
        cfg = self.config
        if x.ndim != 4 or num_frames < 1 or x.shape[0] % num_frames:
            raise ValidationError(
                "x", f"latents [B * F, C, h, w] with F = num_frames = {num_frames}", str(x.shape)
            )
        n = x.shape[0]
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(n)
        self._check("timesteps", timesteps, n, "")
        self._check("context", context, n, f"M, {cfg.context_dim}")
        context = context.to(x.dtype)
        emb = self.time_embed(timestep_embedding(timesteps, cfg.model_channels).to(x.dtype))
        if cfg.camera_dim is not None:
            self._check("camera", camera, n, str(cfg.camera_dim))
            emb = emb + self.camera_embed(camera.to(x.dtype))
        if cfg.ip_dim > 0:
            if ip_tokens is None:
                if ip is None:
                    raise ValidationError(
                        "ip", "CLIP image features [B * F, P, C] or ip_tokens (ImageDream)", "None"
                    )
                self._check("ip", ip, n, f"P, {cfg.ip_embedding_dim}")
                ip_tokens = self.image_embed(ip.to(x.dtype))
            self._check("ip_tokens", ip_tokens, n, f"{cfg.ip_dim}, {cfg.context_dim}")
            ip_tokens = ip_tokens.to(x.dtype)
            if ip_img is not None:
                b = n // num_frames
                if ip_img.shape != (b, *x.shape[1:]):
                    raise ValidationError(
                        "ip_img",
                        f"one input latent per object {(b, *x.shape[1:])}",
                        str(ip_img.shape),
                    )
                frames = x.view(b, num_frames, *x.shape[1:])
                x = torch.cat([frames[:, :-1], ip_img.to(x.dtype)[:, None]], 1).view_as(x)
        else:
            ip_tokens = None

        h, skips = x, []
        for stage in self.input_blocks:
            h = stage(h, emb, context, ip_tokens, num_frames)
            skips.append(h)
        h = self.middle_block(h, emb, context, ip_tokens, num_frames)
        for stage in self.output_blocks:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, context, ip_tokens, num_frames)
        out = self.out(h)
        return MultiViewUNetOutput(sample=out) if return_dict else out


__all__ = [
    "MultiViewUNetModel",
    "MultiViewUNetOutput",
    "SpatialTransformer3D",
    "timestep_embedding",
]

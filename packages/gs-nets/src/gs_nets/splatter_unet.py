"""LGM's splatter UNet: 4 posed views -> one 14-channel Gaussian per output pixel per view.

Architecture facts from 3DTopia/LGM (``core/unet.py``, ``core/models.py``, ``core/options.py``);
the code is ours. Each view enters as 9 channels (ImageNet-normalised RGB + Plücker rays
``[o x d, d]``); the UNet has down channels ``(64, 128, 256, 512, 1024, 1024)`` with 2 ResBlocks
per level, multi-view self-attention (16 heads) in the three deepest down levels, the middle and
the first up levels, 3 ResBlocks per up level, every residual scaled by ``sqrt(0.5)``, and a
final 1x1 convolution. Channels of the output: position (3, clamped to [-1, 1]), opacity (1,
sigmoid), scale (3, ``0.1 * softplus``), rotation (4, ``wxyz`` normalised), RGB (3,
``0.5 * tanh + 0.5``).

Parameter names equal the official ones (``unet.down_blocks.3.attns.0.attn.qkv.weight``,
``conv.weight`` ...), so ``ashawkey/LGM``'s ``model_fp16_fixrot.safetensors`` loads into the
``big`` preset with :meth:`SplatterUNet.from_lgm_checkpoint`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from gs_core.cameras import Cameras
from gs_core.config import Config
from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError
from gs_core.gaussians import Gaussians, rgb_to_sh0
from gs_core.pretrained import PretrainedMixin
from gs_nets.embeddings import plucker_embedding
from gs_nets.multiview import MultiViewAttention
from gs_nets.resblock import ResBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Channel layout of the 14-channel splatter image (LGM core/models.py).
POS, OPACITY, SCALE, ROTATION, RGB = (
    slice(0, 3),
    slice(3, 4),
    slice(4, 7),
    slice(7, 11),
    slice(11, 14),
)

LGM_HUB_ID = "ashawkey/LGM"
LGM_CHECKPOINT = "model_fp16_fixrot.safetensors"


class SplatterUNetConfig(Config):
    """LGM UNet options (``core/options.py``); ``small`` and ``big`` are the official models."""

    in_channels: int = 9
    out_channels: int = 14
    input_size: int = 256
    down_channels: list[int] = [64, 128, 256, 512, 1024, 1024]
    down_attention: list[bool] = [False, False, False, True, True, True]
    mid_attention: bool = True
    up_channels: list[int] = [1024, 1024, 512, 256]
    up_attention: list[bool] = [True, True, True, False]
    layers_per_block: int = 2
    attention_heads: int = 16
    skip_scale: float = math.sqrt(0.5)
    groups: int = 32

    presets: ClassVar = {
        "small": {},
        "big": {
            "up_channels": [1024, 1024, 512, 256, 128],
            "up_attention": [True, True, True, False, False],
        },
        "tiny": {
            "input_size": 32,
            "down_channels": [32, 32, 64, 64],
            "down_attention": [False, False, True, True],
            "up_channels": [64, 64, 32],
            "up_attention": [True, False, False],
            "layers_per_block": 1,
            "attention_heads": 4,
        },
    }

    @model_validator(mode="after")
    def _check(self):
        if len(self.down_attention) != len(self.down_channels):
            raise ValueError("down_attention needs one entry per down_channels entry")
        if len(self.up_attention) != len(self.up_channels):
            raise ValueError("up_attention needs one entry per up_channels entry")
        if not self.up_channels or len(self.up_channels) > len(self.down_channels):
            raise ValueError("need 1 <= len(up_channels) <= len(down_channels)")
        if self.input_size % 2 ** (len(self.down_channels) - 1):
            raise ValueError("input_size must be divisible by 2 ** (len(down_channels) - 1)")
        return self

    @property
    def splat_size(self) -> int:
        """Output resolution per view: ``input_size / 2^(levels-1) * 2^(up levels-1)``."""
        return (
            self.input_size // 2 ** (len(self.down_channels) - 1) * 2 ** (len(self.up_channels) - 1)
        )


def _attn_or_none(enabled: bool, channels: int, cfg: SplatterUNetConfig) -> nn.Module | None:
    if not enabled:
        return None
    return MultiViewAttention(
        channels, cfg.attention_heads, groups=cfg.groups, skip_scale=cfg.skip_scale
    )


class SplatterDownBlock(nn.Module):
    """``layers`` ResBlocks (each optionally followed by multi-view attention), then an optional
    stride-2 3x3 conv. Every intermediate output is kept as a skip."""

    def __init__(
        self, cin: int, cout: int, cfg: SplatterUNetConfig, attention: bool, downsample: bool
    ):
        super().__init__()
        kw = {"groups": cfg.groups, "skip_scale": cfg.skip_scale}
        self.nets = nn.ModuleList(
            ResBlock(cin if i == 0 else cout, cout, **kw) for i in range(cfg.layers_per_block)
        )
        # None entries keep the official indices of the attention weights.
        self.attns = nn.ModuleList(
            _attn_or_none(attention, cout, cfg) for _ in range(cfg.layers_per_block)
        )
        self.downsample = nn.Conv2d(cout, cout, 3, stride=2, padding=1) if downsample else None

    def forward(self, x: torch.Tensor, num_views: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        skips = []
        for net, attn in zip(self.nets, self.attns, strict=True):
            x = net(x)
            if attn is not None:
                x = attn(x, num_views)
            skips.append(x)
        if self.downsample is not None:
            x = self.downsample(x)
            skips.append(x)
        return x, skips


class SplatterMidBlock(nn.Module):
    """ResBlock, then ``[attention, ResBlock]``."""

    def __init__(self, channels: int, cfg: SplatterUNetConfig):
        super().__init__()
        kw = {"groups": cfg.groups, "skip_scale": cfg.skip_scale}
        self.nets = nn.ModuleList(
            [ResBlock(channels, channels, **kw), ResBlock(channels, channels, **kw)]
        )
        self.attns = nn.ModuleList([_attn_or_none(cfg.mid_attention, channels, cfg)])

    def forward(self, x: torch.Tensor, num_views: int) -> torch.Tensor:
        x = self.nets[0](x)
        # Indexing, not ``self.nets[1:]``: a slice builds a new ModuleList on every call.
        for i, attn in enumerate(self.attns):
            if attn is not None:
                x = attn(x, num_views)
            x = self.nets[i + 1](x)
        return x


class SplatterUpBlock(nn.Module):
    """Each layer concatenates the latest skip, runs a ResBlock (and attention); then an optional
    nearest 2x upsampling followed by a 3x3 conv."""

    def __init__(
        self,
        cin: int,
        skip_channels: list[int],
        cout: int,
        cfg: SplatterUNetConfig,
        attention: bool,
        upsample: bool,
    ):
        super().__init__()
        kw = {"groups": cfg.groups, "skip_scale": cfg.skip_scale}
        self.nets = nn.ModuleList(
            ResBlock((cin if i == 0 else cout) + s, cout, **kw) for i, s in enumerate(skip_channels)
        )
        self.attns = nn.ModuleList(_attn_or_none(attention, cout, cfg) for _ in skip_channels)
        self.upsample = nn.Conv2d(cout, cout, 3, padding=1) if upsample else None

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], num_views: int) -> torch.Tensor:
        for net, attn in zip(self.nets, self.attns, strict=True):
            x = net(torch.cat([x, skips.pop()], dim=1))
            if attn is not None:
                x = attn(x, num_views)
        if self.upsample is not None:
            x = self.upsample(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class SplatterUNetBackbone(nn.Module):
    """The UNet (``unet.*`` in LGM checkpoints). ``forward(x [B*V, Cin, H, W], num_views)``
    -> ``[B*V, Cout, h, w]``."""

    def __init__(self, cfg: SplatterUNetConfig):
        super().__init__()
        down = cfg.down_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, down[0], 3, padding=1)
        # Track the channel count of every skip tensor in the order the down path stores them;
        # the up path pops them last-in first-out.
        skip_stack = [down[0]]
        blocks = []
        cin = down[0]
        for i, cout in enumerate(down):
            last = i == len(down) - 1
            blocks.append(
                SplatterDownBlock(cin, cout, cfg, cfg.down_attention[i], downsample=not last)
            )
            skip_stack += [cout] * cfg.layers_per_block + ([] if last else [cout])
            cin = cout
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = SplatterMidBlock(down[-1], cfg)
        ups = []
        n_up = cfg.layers_per_block + 1
        for i, cout in enumerate(cfg.up_channels):
            skips = [skip_stack.pop() for _ in range(n_up)]
            ups.append(
                SplatterUpBlock(
                    cin,
                    skips,
                    cout,
                    cfg,
                    cfg.up_attention[i],
                    upsample=i != len(cfg.up_channels) - 1,
                )
            )
            cin = cout
        self.up_blocks = nn.ModuleList(ups)
        self.norm_out = nn.GroupNorm(cfg.groups, cin, eps=1e-5)
        self.conv_out = nn.Conv2d(cin, cfg.out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, num_views: int) -> torch.Tensor:
        x = self.conv_in(x)
        skips = [x]
        for blk in self.down_blocks:
            x, s = blk(x, num_views)
            skips.extend(s)
        x = self.mid_block(x, num_views)
        for blk in self.up_blocks:
            x = blk(x, skips, num_views)
        return self.conv_out(F.silu(self.norm_out(x)))


def splatter_activations(raw: torch.Tensor) -> torch.Tensor:
    """LGM's activations on ``raw [..., 14]`` (channel last) -> ``[..., 14]`` =
    ``[pos, opacity, scale, rotation (wxyz), rgb]``."""
    if raw.shape[-1] != 14:
        raise ValidationError("raw", "shape [..., 14]", f"shape {tuple(raw.shape)}")
    return torch.cat(
        [
            raw[..., POS].clamp(-1, 1),
            torch.sigmoid(raw[..., OPACITY]),
            0.1 * F.softplus(raw[..., SCALE]),
            F.normalize(raw[..., ROTATION], dim=-1),
            0.5 * torch.tanh(raw[..., RGB]) + 0.5,
        ],
        dim=-1,
    )


class SplatterUNet(PretrainedMixin, nn.Module):
    """LGM splatter network: ``unet`` (9 -> 14 channels) followed by a 1x1 ``conv``.

    * ``forward(views [B, V, 9, H, W])`` -> raw splatter images ``[B, V, 14, S, S]``.
    * ``gaussian_params(views)`` -> activated ``[B, V*S*S, 14]`` (LGM's ``forward_gaussians``).
    * ``gaussians(views)`` -> :class:`gs_core.Gaussians` (batch ``[B]``, SH degree 0).
    """

    config_class = SplatterUNetConfig

    def __init__(self, config: SplatterUNetConfig | None = None):
        super().__init__()
        self.config = config = config or SplatterUNetConfig()
        if config.out_channels != 14:
            raise ValidationError(
                "SplatterUNetConfig.out_channels",
                "14 (the Gaussian layout)",
                str(config.out_channels),
            )
        self.unet = SplatterUNetBackbone(config)
        self.conv = nn.Conv2d(config.out_channels, config.out_channels, 1)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if (
            views.ndim != 5
            or views.shape[2] != cfg.in_channels
            or views.shape[-1] != views.shape[-2]
        ):
            raise ValidationError(
                "views", f"shape [B, V, {cfg.in_channels}, H, H]", f"shape {tuple(views.shape)}"
            )
        if views.shape[-1] % 2 ** (len(cfg.down_channels) - 1):
            raise ValidationError(
                "views",
                f"H divisible by {2 ** (len(cfg.down_channels) - 1)}",
                f"H = {views.shape[-1]}",
            )
        b, v = views.shape[:2]
        x = self.conv(self.unet(views.flatten(0, 1), num_views=v))
        return x.reshape(b, v, *x.shape[1:])

    def gaussian_params(self, views: torch.Tensor) -> torch.Tensor:
        raw = self(views)  # [B, V, 14, S, S]
        b = raw.shape[0]
        return splatter_activations(raw.permute(0, 1, 3, 4, 2).reshape(b, -1, 14))

    def gaussians(self, views: torch.Tensor) -> Gaussians:
        return params_to_gaussians(self.gaussian_params(views))

    @classmethod
    def from_lgm_checkpoint(
        cls,
        path: str | Path = LGM_HUB_ID,
        preset: str = "big",
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> SplatterUNet:
        """Load an official LGM checkpoint (``model_fp16_fixrot.safetensors`` = ``big``).

        ``path`` is the ``.safetensors`` file, a directory holding it, or a hub id
        (``ashawkey/LGM``, ``hf://ashawkey/LGM@rev``; needs ``huggingface_hub``, read from its
        cache first). Keys must match the preset exactly.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        file = _resolve_lgm_file(path)
        with torch.device("meta"):  # no random init of ~400M parameters that get overwritten
            model = cls(SplatterUNetConfig.preset(preset))
        try:
            state = load_file(str(file), device="cpu")
        except (SafetensorError, OSError) as e:
            raise FileFormatError(file, f"not a readable safetensors file ({e})") from None
        expected = model.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        bad = [k for k in expected if k in state and state[k].shape != expected[k].shape]
        if missing or unexpected or bad:
            raise FileFormatError(
                file,
                f"not an LGM '{preset}' checkpoint: missing {missing[:3]}, unexpected {unexpected[:3]}, "
                f"wrong shapes {bad[:3]}",
            )
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
        return model.to(device=device, dtype=dtype)


def _resolve_lgm_file(path: str | Path) -> Path:
    from gs_core.hub import parse_hub_ref, resolve_pretrained

    hint = (
        f"download it with `hf download {LGM_HUB_ID} {LGM_CHECKPOINT} --local-dir DIR` "
        f"(`huggingface-cli download {LGM_HUB_ID} {LGM_CHECKPOINT} --local-dir DIR` with "
        "huggingface_hub < 1.0) and pass DIR"
    )
    if parse_hub_ref(path) is None and not Path(path).expanduser().exists():
        raise WeightsNotFoundError(f"{path}: no such LGM checkpoint file; {hint}")
    p = resolve_pretrained(path, filenames=[LGM_CHECKPOINT], what="LGM checkpoint")
    if p.is_dir():
        f = p / LGM_CHECKPOINT
        if not f.is_file():
            raise WeightsNotFoundError(f"{p}: no {LGM_CHECKPOINT} in this directory; {hint}")
        return f
    return p


def params_to_gaussians(params: torch.Tensor) -> Gaussians:
    """Activated LGM parameters ``[..., N, 14]`` -> :class:`gs_core.Gaussians` (SH degree 0)."""
    if params.shape[-1] != 14:
        raise ValidationError("params", "shape [..., N, 14]", f"shape {tuple(params.shape)}")
    return Gaussians.unchecked(
        means=params[..., POS],
        quats=params[..., ROTATION],
        scales=params[..., SCALE],
        opacities=params[..., 3],
        sh=rgb_to_sh0(params[..., RGB]).unsqueeze(-2),
    )


def splatter_unet_input(
    images: torch.Tensor, cameras: Cameras, normalize: bool = True
) -> torch.Tensor:
    """LGM's 9-channel input: ImageNet-normalised RGB + Plücker rays of the matching cameras.

    Args:
        images: ``[B, V, 3, H, W]`` RGB in [0, 1].
        cameras: ``V`` cameras, batch shape ``[]`` (shared) or ``[B]``; rays are computed at
            ``H x W``.

    Returns:
        ``[B, V, 9, H, W]``.
    """
    if images.ndim != 5 or images.shape[2] != 3:
        raise ValidationError("images", "shape [B, V, 3, H, W]", f"shape {tuple(images.shape)}")
    b, v, _, h, w = images.shape
    if cameras.n_cameras != v or cameras.batch_shape not in ((), (b,)):
        raise ValidationError("cameras", f"{v} cameras with batch shape [] or [{b}]", repr(cameras))
    rays = plucker_embedding(cameras, h, w).to(device=images.device, dtype=images.dtype)
    rays = rays.expand(b, v, 6, h, w)
    if normalize:
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 1, 3, 1, 1)
        images = (images - mean) / std
    return torch.cat([images, rays], dim=2)


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LGM_CHECKPOINT",
    "LGM_HUB_ID",
    "SplatterDownBlock",
    "SplatterMidBlock",
    "SplatterUNet",
    "SplatterUNetBackbone",
    "SplatterUNetConfig",
    "SplatterUpBlock",
    "params_to_gaussians",
    "splatter_activations",
    "splatter_unet_input",
]

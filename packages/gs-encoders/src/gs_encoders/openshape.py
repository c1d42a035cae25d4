"""OpenShape's PointBERT-style point-patch transformer (Liu et al. 2023), our implementation.

Compress3D (Sec. 3.3) extracts shape embeddings ``e_s in R^1280`` with the released OpenShape
encoder ``OpenShape/openshape-pointbert-vitg14-rgb``, whose output is aligned with OpenCLIP
ViT-bigG-14 image and text embeddings. The architecture follows the official code
(Colin97/OpenShape_code ``src/models/ppat.py``, ``make`` with ``scaling = 4``; the demo package's
``openshape/__init__.py`` builds the same for ``vitg14``):

1. set abstraction: 384 farthest-point-sampled centres, a ball of radius 0.2 holding up to 64
   points around each, features ``[xyz - centre, xyz, rgb]`` through three 1x1 conv + BN + ReLU
   layers (64, 64, 256) and a max over the ball;
2. lift: ``[centre, feature]`` (3 + 256) -> 512 by a 1x1 conv, then LayerNorm;
3. a learned [CLS] token and 12 pre-norm transformer layers (8 heads of 64, MLP 1536, GELU, no
   positional encoding: the centre coordinates entered at the lift);
4. the [CLS] output projected to 1280.

Module names reproduce the checkpoint's keys (``ppat.sa.mlp_convs.0.weight``,
``ppat.transformer.layers.3.0.fn.to_qkv.weight``, ``proj.weight``, ...) so the published
``model.pt`` loads as is; its DDP ``module.`` prefix is removed on load.

Input: ``points [B, N, 6]`` = xyz normalised to the unit sphere (centred on the mean, divided by
the largest norm) and rgb in ``[0, 1]`` (0.4 grey when a cloud has no colour); OpenShape samples
10,000 points, Y up. :func:`prepare_point_cloud` does this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.config import Config
from gs_core.errors import FileFormatError, ValidationError
from gs_core.hub import resolve_pretrained
from gs_core.points import ball_query, farthest_point_sample, gather_points, group_points, knn
from gs_core.pretrained import CONFIG_NAME, PretrainedMixin
from gs_encoders.weights import (
    find_in_directory,
    load_into,
    read_state_dict,
    select_prefix,
    strip_prefixes,
)

OPENSHAPE_HUB_ID = "OpenShape/openshape-pointbert-vitg14-rgb"
OPENSHAPE_FILE = "model.pt"
NUM_POINTS = 10_000
MISSING_COLOR = 0.4


class OpenShapeConfig(Config):
    """Sizes of the point-patch transformer; the defaults are the released ViT-bigG-14 model."""

    in_channels: int = 6  # per-point features: xyz + rgb
    dim: int = 512
    depth: int = 12
    heads: int = 8
    head_dim: int = 64
    mlp_dim: int = 1536
    sa_dim: int = 256
    num_patches: int = 384
    ball_radius: float = 0.2
    group_size: int = 64
    out_dim: int = 1280
    grouping: Literal["ball", "knn"] = "ball"  # the released weights were trained with "ball"

    presets = {
        "paper": {},
        "pointbert-vitg14-rgb": {},
        # OpenShape/openshape-pointbert-vitl14-rgb (aligned with OpenAI ViT-L/14, 768-d).
        "pointbert-vitl14-rgb": {
            "mlp_dim": 1024,
            "sa_dim": 128,
            "num_patches": 64,
            "ball_radius": 0.4,
            "group_size": 256,
            "out_dim": 768,
        },
        "small": {
            "dim": 256,
            "depth": 6,
            "heads": 4,
            "mlp_dim": 768,
            "sa_dim": 128,
            "num_patches": 128,
        },
        "tiny": {
            "dim": 32,
            "depth": 2,
            "heads": 2,
            "head_dim": 16,
            "mlp_dim": 64,
            "sa_dim": 16,
            "num_patches": 16,
            "ball_radius": 0.5,
            "group_size": 8,
            "out_dim": 24,
        },
    }


# -- building blocks (attribute names fixed by the checkpoint's keys) ----------------------------
class _SetAbstraction(nn.Module):
    """FPS centres + grouped shared MLP + max pool (PointNet++ set abstraction)."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], cfg: OpenShapeConfig):
        super().__init__()
        self.cfg = cfg
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.mlp_convs.append(nn.Conv2d(c, w, 1))
            self.mlp_bns.append(nn.BatchNorm2d(w))
            c = w

    def forward(self, xyz: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``xyz [B, N, 3]``, ``feats [B, N, C]`` -> centres ``[B, S, 3]``, features ``[B, S, W]``."""
        cfg = self.cfg
        centre_idx = farthest_point_sample(xyz, cfg.num_patches)
        centres = gather_points(xyz, centre_idx)
        if cfg.grouping == "ball":
            group = ball_query(xyz, centres, cfg.ball_radius, cfg.group_size)
        else:
            group = knn(centres, xyz, cfg.group_size)[1]
        x = group_points(feats.to(xyz.dtype), xyz, centres, group)  # [B, S, k, 3 + C]
        # geometry above stays in the input precision; the network runs in its own
        x = x.to(self.mlp_convs[0].weight.dtype).permute(0, 3, 1, 2)  # [B, 3 + C, S, k]
        for conv, bn in zip(self.mlp_convs, self.mlp_bns, strict=True):
            x = F.relu(bn(conv(x)))
        return centres, x.amax(dim=-1).transpose(1, 2)


class _ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class _PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * head_dim, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * head_dim, dim), nn.Dropout(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(head_dim)) v
        return self.to_out(out.transpose(1, 2).reshape(b, t, -1))


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        # The dropouts hold no weights but keep the checkpoint's indices (net.0, net.3).
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(0.0),
            nn.Linear(hidden, dim),
            nn.Dropout(0.0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Transformer(nn.Module):
    def __init__(self, cfg: OpenShapeConfig):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    _PreNorm(cfg.dim, _Attention(cfg.dim, cfg.heads, cfg.head_dim)),
                    _PreNorm(cfg.dim, _FeedForward(cfg.dim, cfg.mlp_dim)),
                ]
            )
            for _ in range(cfg.depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, mlp in self.layers:
            x = x + attn(x)
            x = x + mlp(x)
        return x


class _PointPatchTransformer(nn.Module):
    def __init__(self, cfg: OpenShapeConfig):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(cfg.dim))
        self.sa = _SetAbstraction(cfg.in_channels + 3, (64, 64, cfg.sa_dim), cfg)
        self.lift = nn.Sequential(
            nn.Conv1d(cfg.sa_dim + 3, cfg.dim, 1), _ChannelsLast(), nn.LayerNorm(cfg.dim)
        )
        self.transformer = _Transformer(cfg)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        centres, feats = self.sa(points[..., :3], points)
        x = torch.cat([centres.to(feats.dtype), feats], dim=-1).transpose(1, 2)  # [B, 3 + W, S]
        x = self.lift(x)  # [B, S, dim]
        cls = self.cls_token.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.transformer(torch.cat([cls, x], dim=1))
        return x[:, 0]


# -- the encoder -------------------------------------------------------------------------------
class OpenShapeEncoder(PretrainedMixin, nn.Module):
    """Point cloud -> OpenShape shape embedding ``[B, out_dim]`` (1280 for the released model).

    ``OpenShapeEncoder.from_pretrained()`` loads the released weights (see there);
    ``OpenShapeEncoder(config)`` is randomly initialised.
    """

    config_class = OpenShapeConfig

    def __init__(self, config: OpenShapeConfig | None = None):
        super().__init__()
        self.config = config or OpenShapeConfig()
        self.ppat = _PointPatchTransformer(self.config)
        self.proj = nn.Linear(self.config.dim, self.config.out_dim)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """``points [B, N, in_channels]`` (normalised xyz first) -> embeddings ``[B, out_dim]``.

        The embedding is not unit length, as in OpenShape; normalise it to compare with CLIP.
        """
        cfg = self.config
        if (
            not isinstance(points, torch.Tensor)
            or points.ndim != 3
            or points.shape[-1] != cfg.in_channels
        ):
            got = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
            raise ValidationError("points", f"[B, N, {cfg.in_channels}] (xyz + features)", str(got))
        need = max(cfg.num_patches, cfg.group_size)
        if points.shape[1] < need:
            raise ValidationError(
                "points",
                f"at least {need} points per cloud (OpenShape uses {NUM_POINTS})",
                str(points.shape[1]),
            )
        # Coordinates keep their precision for sampling and grouping (bf16 would move points
        # across ball boundaries); each network stage casts to its weights' dtype.
        return self.proj(self.ppat(points.float() if points.dtype == torch.float64 else points))

    @torch.no_grad()
    def encode(
        self,
        xyz: torch.Tensor,
        rgb: torch.Tensor | None = None,
        num_points: int | None = NUM_POINTS,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Raw clouds ``xyz [B, N, 3]`` (+ ``rgb [B, N, 3]`` in [0, 1]) -> embeddings ``[B, out_dim]``.

        Normalises and resamples with :func:`prepare_point_cloud` first.
        """
        points = prepare_point_cloud(xyz, rgb, num_points=num_points, generator=generator)
        return self(points.to(self.proj.weight.device))

    # -- weights --------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = OPENSHAPE_HUB_ID,
        device: str | torch.device = "cpu",
        strict: bool = True,
        config: OpenShapeConfig | None = None,
    ) -> OpenShapeEncoder:
        """Load weights; the result is in eval mode.

        ``name_or_path`` is the hub id of an OpenShape release (default: the ViT-bigG-14 model;
        its ``model.pt`` is read weights-only), the official ``model.pt`` or any state-dict
        file in the same layout, a directory holding ``model.pt``, a gs3d checkpoint directory
        (``config.json`` + ``model.safetensors`` from :meth:`save_pretrained`), or ``None`` for
        random initialisation. ``config`` gives the sizes for official files (default: the
        ViT-bigG-14 model; ``OpenShapeConfig.preset("pointbert-vitl14-rgb")`` for ViT-L/14).
        """
        if name_or_path is None:
            return cls(config).to(device).eval()
        spec = str(name_or_path)
        what = "OpenShape point encoder"
        path = resolve_pretrained(spec, filenames=[OPENSHAPE_FILE], what=what)
        if path.is_dir() and (path / CONFIG_NAME).is_file():
            return super().from_pretrained(path, device=device, strict=strict).eval()
        if path.is_dir():
            path = find_in_directory(path, (OPENSHAPE_FILE, "model.safetensors"), what)
        model = cls(config)
        state = read_state_dict(path, what)
        # The released vitg14 file is a DDP training checkpoint ("module." keys); the vitl14 one
        # keeps the encoder under "pc_encoder." next to other networks.
        state = strip_prefixes(select_prefix(select_prefix(state, "module."), "pc_encoder."))
        if strict:
            load_into(
                model, state, path, f"{what} ({model.config.dim}-d, depth {model.config.depth})"
            )
        else:
            try:
                model.load_state_dict(state, strict=False)
            except RuntimeError as e:
                raise FileFormatError(path, f"weights do not fit {what}: {str(e)[:300]}") from None
        return model.to(device).eval()


def normalize_point_cloud(xyz: torch.Tensor) -> torch.Tensor:
    """Centre ``xyz [..., N, 3]`` on its mean and scale its largest norm to 1 (OpenShape's rule).

    A cloud collapsed to a point (largest norm < 1e-6) becomes all zeros.
    """
    xyz = xyz.float()
    centred = xyz - xyz.mean(dim=-2, keepdim=True)
    radius = centred.norm(dim=-1).amax(dim=-1, keepdim=True).unsqueeze(-1)
    return torch.where(radius < 1e-6, torch.zeros_like(centred), centred / radius.clamp_min(1e-6))


def prepare_point_cloud(
    xyz: torch.Tensor,
    rgb: torch.Tensor | None = None,
    num_points: int | None = NUM_POINTS,
    swap_yz: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Raw clouds -> OpenShape input ``[B, num_points, 6]`` = (normalised xyz, rgb).

    Args:
        xyz: ``[B, N, 3]`` (or ``[N, 3]``) in any frame; OpenShape expects Y up, so pass
            ``swap_yz=True`` for Z-up data.
        rgb: ``[B, N, 3]`` in ``[0, 1]``; ``None`` fills OpenShape's 0.4 grey.
        num_points: resample to this many points (random subset without replacement, or the
            cloud plus random repeats when it has fewer), as OpenShape's loaders do; ``None``
            keeps the points as they are.
    """
    if xyz.ndim == 2:
        xyz = xyz.unsqueeze(0)
        rgb = rgb.unsqueeze(0) if rgb is not None else None
    if xyz.ndim != 3 or xyz.shape[-1] != 3 or xyz.shape[1] == 0:
        raise ValidationError("xyz", "points [B, N, 3] with N > 0", str(tuple(xyz.shape)))
    if rgb is None:
        rgb = torch.full_like(xyz, MISSING_COLOR, dtype=torch.float32)
    if rgb.shape != xyz.shape:
        raise ValidationError(
            "rgb", f"colours of the same shape as xyz {tuple(xyz.shape)}", str(tuple(rgb.shape))
        )
    if swap_yz:
        xyz = xyz[..., [0, 2, 1]]
    pts = torch.cat([normalize_point_cloud(xyz), rgb.float()], dim=-1)
    n = pts.shape[1]
    if num_points is None or num_points == n:
        return pts
    dev = pts.device
    rows = []
    for cloud in pts:
        if n > num_points:
            idx = torch.randperm(n, generator=generator)[:num_points]
        else:
            extra = torch.randint(n, (num_points - n,), generator=generator)
            idx = torch.cat([torch.arange(n), extra])
        rows.append(cloud[idx.to(dev)])
    return torch.stack(rows)


__all__ = [
    "NUM_POINTS",
    "OPENSHAPE_HUB_ID",
    "OpenShapeConfig",
    "OpenShapeEncoder",
    "normalize_point_cloud",
    "prepare_point_cloud",
]

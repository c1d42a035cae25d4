"""PVCNN++ encoder/decoder UNet on point clouds (PVCNN ``models/s3dis/pvcnnpp.py`` layout).

Encoder level ``i``: PVConv blocks on the current points, then a set abstraction to
``N_i / stride`` centres. Decoder level ``j``: feature propagation back to the points of encoder
level ``L-1-j`` (with that level's input features as skip), then PVConv blocks. The point
coordinates are part of the first level's input features, as in PVCNN, and only the extra
features are used as the last skip. AGG (Sec. 3.3, Fig. 3) builds its Gaussian super-resolution
encoder and decoder from such point-voxel UNets.

``forward(xyz [B, N, 3], feats [B, N, in_channels] | None)`` -> ``[B, N, out_channels]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_core.points import knn
from gs_core.pretrained import PretrainedMixin
from gs_nets.pointnet2 import FeaturePropagation, SetAbstraction
from gs_nets.pvconv import PVConv


class SALevelConfig(Config):
    """One encoder level: ``pv_blocks`` PVConvs of ``pv_channels`` then set abstraction."""

    pv_channels: int = 0
    pv_blocks: int = 0
    voxel_resolution: int = 32
    stride: int = 4
    k: int = 32
    radius: float | None = None
    mlp: list[int]


class FPLevelConfig(Config):
    """One decoder level: feature propagation MLP ``mlp`` then ``pv_blocks`` PVConvs."""

    mlp: list[int]
    pv_channels: int = 0
    pv_blocks: int = 0
    voxel_resolution: int = 32


def _sa(mlp, pv=(0, 0, 32), stride=4, k=32):
    return {
        "pv_channels": pv[0],
        "pv_blocks": pv[1],
        "voxel_resolution": pv[2],
        "stride": stride,
        "k": k,
        "mlp": mlp,
    }


def _fp(mlp, pv=(0, 0, 32)):
    return {"mlp": mlp, "pv_channels": pv[0], "pv_blocks": pv[1], "voxel_resolution": pv[2]}


class PVCNNUNetConfig(Config):
    in_channels: int = 0
    sa_levels: list[SALevelConfig]
    fp_levels: list[FPLevelConfig]
    with_se: bool = True
    normalize: bool = True
    eps: float = 0.0

    # "pvcnn2": PVCNN++'s S3DIS architecture (sa_blocks / fp_blocks of models/s3dis/pvcnnpp.py),
    # with its 4096 -> 1024 -> 256 -> 64 -> 16 centres written as stride 4 per level and kNN
    # (k = 32) in place of its ball queries.
    presets: ClassVar = {
        "pvcnn2": {
            "sa_levels": [
                _sa([32, 64], (32, 2, 32)),
                _sa([64, 128], (64, 3, 16)),
                _sa([128, 256], (128, 3, 8)),
                _sa([256, 256, 512]),
            ],
            "fp_levels": [
                _fp([256, 256], (256, 1, 8)),
                _fp([256, 256], (256, 1, 8)),
                _fp([256, 128], (128, 2, 16)),
                _fp([128, 128, 64], (64, 1, 32)),
            ],
        },
        "small": {
            "sa_levels": [
                _sa([32, 64], (32, 1, 32)),
                _sa([64, 128], (64, 1, 16)),
                _sa([128, 256], (128, 1, 8)),
            ],
            "fp_levels": [
                _fp([256, 256], (256, 1, 8)),
                _fp([256, 128], (128, 1, 16)),
                _fp([128, 64], (64, 1, 32)),
            ],
        },
        "tiny": {
            "sa_levels": [_sa([8, 16], (8, 1, 4), k=4), _sa([16, 16], k=4)],
            "fp_levels": [_fp([16, 16], (16, 1, 4)), _fp([16, 8])],
            "with_se": False,
        },
    }


class PVCNNUNet(PretrainedMixin, nn.Module):
    """Point-voxel UNet with set-abstraction / feature-propagation levels (see module doc)."""

    config_class = PVCNNUNetConfig

    def __init__(self, config: PVCNNUNetConfig):
        super().__init__()
        self.config = config
        if len(config.sa_levels) != len(config.fp_levels) or not config.sa_levels:
            raise ValidationError(
                "PVCNNUNetConfig",
                "as many fp_levels as sa_levels (at least one)",
                f"{len(config.sa_levels)} sa, {len(config.fp_levels)} fp",
            )
        pv = {"with_se": config.with_se, "normalize": config.normalize, "eps": config.eps}
        ch = config.in_channels + 3
        skip_channels: list[int] = []
        self.sa_pv = nn.ModuleList()
        self.sa = nn.ModuleList()
        for lv in config.sa_levels:
            skip_channels.append(ch)
            blocks = []
            for _ in range(lv.pv_blocks):
                blocks.append(PVConv(ch, lv.pv_channels, lv.voxel_resolution, **pv))
                ch = lv.pv_channels
            self.sa_pv.append(nn.ModuleList(blocks))
            sa = SetAbstraction(ch, lv.mlp, stride=lv.stride, k=lv.k, radius=lv.radius)
            self.sa.append(sa)
            ch = sa.out_channels
        skip_channels[0] = config.in_channels  # the last skip gets the extra features only
        self.fp = nn.ModuleList()
        self.fp_pv = nn.ModuleList()
        for j, lv in enumerate(config.fp_levels):
            fp = FeaturePropagation(ch, skip_channels[-1 - j], lv.mlp)
            self.fp.append(fp)
            ch = fp.out_channels
            blocks = []
            for _ in range(lv.pv_blocks):
                blocks.append(PVConv(ch, lv.pv_channels, lv.voxel_resolution, **pv))
                ch = lv.pv_channels
            self.fp_pv.append(nn.ModuleList(blocks))
        self.out_channels = ch

    def _parents_sampling(self, xyz: torch.Tensor, repeats: int):
        """For ``repeats`` copies of each parent (see :meth:`forward`): the first level's centre
        indices ``[B, N / r]``, and when they can be had from the parents alone, its kNN
        ``(dist2, idx)`` and the last propagation's (``None`` otherwise)."""
        first = self.sa[0]
        b, n = xyz.shape[0], xyz.shape[1] // repeats
        centers = (torch.arange(n, device=xyz.device) * repeats).expand(b, n)
        if first.k % repeats or first.radius is not None or first.k > xyz.shape[1]:
            return centers, None, None
        parents = xyz[:, ::repeats]
        d2, idx = knn(parents, parents, first.k // repeats)
        copies = torch.arange(repeats, device=xyz.device)
        sa_nbrs = (
            d2.repeat_interleave(repeats, dim=-1),
            (idx.unsqueeze(-1) * repeats + copies).flatten(-2),
        )
        k_fp = min(3, n)  # the propagation's 3 nearest parents
        if idx.shape[-1] < k_fp:
            return centers, sa_nbrs, None
        fp_nbrs = tuple(t[..., :k_fp].repeat_interleave(repeats, dim=1) for t in (d2, idx))
        return centers, sa_nbrs, fp_nbrs

    def forward(
        self,
        xyz: torch.Tensor,
        feats: torch.Tensor | None = None,
        sample_idx: Sequence[torch.Tensor | None] | None = None,
        return_sample_idx: bool = False,
        repeats: int = 1,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``sample_idx``: per encoder level, the centres' indices into that level's points when
        already known (``None`` entries are sampled); ``return_sample_idx`` also returns the
        indices used, level by level.

        ``repeats = r``: the points are ``r`` copies of each of ``N / r`` parents (row
        ``i * r + j``, each parent repeated ``r`` times in a row). With a first
        stride of ``r`` the first level's centres are then the parents in order (what farthest
        point sampling picks, one copy of each, up to order), and when ``k`` is a multiple of
        ``r`` its neighbourhoods and the last propagation's neighbours come from the ``N / r``
        parents instead of all ``N`` points: the same neighbours (copies are equidistant), at a
        ``r``-th of the kNN cost.
        """
        c_in = self.config.in_channels
        levels = len(self.sa)
        if sample_idx is not None and len(sample_idx) != levels:
            raise ValidationError(
                "sample_idx", f"{levels} entries (one per level)", f"{len(sample_idx)}"
            )
        if xyz.ndim != 3 or xyz.shape[-1] != 3:
            raise ValidationError("xyz", "shape [B, N, 3]", f"shape {tuple(xyz.shape)}")
        if c_in and (feats is None or feats.shape != (*xyz.shape[:2], c_in)):
            got = "None" if feats is None else f"shape {tuple(feats.shape)}"
            raise ValidationError("feats", f"shape [B, N, {c_in}] = {(*xyz.shape[:2], c_in)}", got)
        if not c_in:
            if feats is not None and feats.shape[-1]:
                raise ValidationError(
                    "feats", "None (PVCNNUNetConfig.in_channels = 0)", f"shape {tuple(feats.shape)}"
                )
            feats = None
        x = xyz if feats is None else torch.cat([xyz, feats.to(xyz.dtype)], dim=-1)
        sample_idx = list(sample_idx) if sample_idx is not None else [None] * levels
        sa_nbrs = fp_nbrs = None
        if repeats > 1 and self.sa[0].stride == repeats and xyz.shape[1] % repeats == 0:
            sample_idx[0], sa_nbrs, fp_nbrs = self._parents_sampling(xyz, repeats)
        coords, skips, used = [], [], []
        p = xyz
        for i, (pv_blocks, sa) in enumerate(zip(self.sa_pv, self.sa, strict=True)):
            coords.append(p)
            skips.append(x)
            for blk in pv_blocks:
                x = blk(x, p)
            idx = sample_idx[i]
            used.append(sa.sample(p) if idx is None else idx)
            x, p = sa(x, p, used[-1], sa_nbrs if i == 0 else None)
        skips[0] = feats
        for j, (fp, pv_blocks) in enumerate(zip(self.fp, self.fp_pv, strict=True)):
            fine = coords[-1 - j]
            last = j == len(self.fp) - 1
            x = fp(fine, p, x, skips[-1 - j], fp_nbrs if last else None)
            p = fine
            for blk in pv_blocks:
                x = blk(x, p)
        return (x, used) if return_sample_idx else x


__all__ = ["FPLevelConfig", "PVCNNUNet", "PVCNNUNetConfig", "SALevelConfig"]

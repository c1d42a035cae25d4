"""AGG's training stages on the shared engine (``gs3d train --method agg --stage S``).

- ``warmup`` (Sec. 3.4.2): the coarse generator regresses 3DGS pseudo labels with the attribute
  Chamfer loss (location, opacity, colour; correspondences from the means). Labels are the
  per-object fits of ``gs3d fit`` (``gaussians.ply``; the paper fits 3DGS initialised from the
  ground-truth point clouds) or, with ``warmup_target=points``, the coloured ground-truth
  surface points at opacity 1.
- ``coarse`` (Sec. 3.2): rendering loss ``L_rgba + w1 L_lpips`` (eq. 4) on random novel views
  of the coarse Gaussians.
- ``sr`` (Sec. 3.3): the same loss on the super-resolved Gaussians; the coarse generator is
  frozen unless ``sr_train_coarse``.

Samples come from :class:`gs_core.data.MultiViewDataset` with ``space="azimuth"``: a random
input view per object, objects and target cameras rotated so that its azimuth is 0 (Sec. 4.1,
the rotation augmentation). With ``resident_data`` the same samples are drawn on the training
device from :class:`gs_core.data.resident.ResidentViews` (the engine then streams object
indices, and ``training_step`` turns them into samples).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gs_core.data import MultiViewConfig, MultiViewDataset, batch_cameras
from gs_core.data.resident import IndexDataset, ResidentViews
from gs_core.errors import GS3DError, ValidationError
from gs_core.rendering import render
from gs_core.training import TrainerConfig, TrainingModule, build_scheduler
from gs_losses import attribute_chamfer, rgba_loss
from gs_method_agg.config import STAGES, AGGConfig
from gs_method_agg.model import AGG, canonical_gaussians


class FittedLabels(Dataset):
    """Adds the pseudo labels of one object's ``gaussians.ply`` to each sample:
    ``label_xyz [P, 3]`` (in the sample's space), ``label_rgb [P, 3]``, ``label_opacity [P, 1]``."""

    def __init__(self, base: MultiViewDataset, count: int):
        self.base = base
        self.count = count
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.base)

    def _labels(self, index: int):
        oid = self.base.object_ids[index]
        if oid not in self._cache:
            from gs_core.io import load_ply

            path = self.base.root / oid / "gaussians.ply"
            if not path.is_file():
                raise GS3DError(
                    f"{path}: not found; the warm-up needs per-object 3DGS pseudo labels: run "
                    f"`gs3d fit {self.base.root} --split {self.base.split}` first, or train with "
                    "warmup_target=points to use the ground-truth point clouds"
                )
            g = load_ply(path)
            self._cache[oid] = (g.means.numpy(), g.colors.numpy(), g.opacities.numpy())
        return self._cache[oid]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        xyz, rgb, opa = self._labels(index)
        rng = np.random.default_rng([index, int(torch.randint(0, 2**31, (1,)).item())])
        pick = rng.choice(len(xyz), size=self.count, replace=len(xyz) < self.count)
        T = item["space_transform"].double().numpy()
        p = xyz[pick].astype(np.float64) @ T[:3, :3].T + T[:3, 3]
        item["label_xyz"] = torch.from_numpy(p).float()
        item["label_rgb"] = torch.from_numpy(rgb[pick]).float()
        item["label_opacity"] = torch.from_numpy(opa[pick]).float().unsqueeze(-1)
        return item


def training_dataset(
    config: AGGConfig, data_dir: str | Path, stage: str, split: str = "train"
) -> Dataset:
    """The multi-view samples of ``stage`` from a ``gs3d data procedural`` style dataset."""
    warm_points = stage == "warmup" and config.warmup_target == "points"
    mv = MultiViewConfig(
        resolution=config.render_resolution,
        num_target_views=config.num_target_views,
        input_view="random",
        background=config.background,
        space="azimuth",
        load_points=warm_points,
        num_points=config.warmup_points,
    )
    base = MultiViewDataset(data_dir, split, mv)
    if stage == "warmup" and config.warmup_target == "fitted":
        return FittedLabels(base, config.warmup_points)
    return base


class AGGTrainingModule(TrainingModule):
    """One AGG training stage; the engine checkpoints ``model`` (the whole :class:`AGG`)."""

    def __init__(
        self,
        model: AGG,
        stage: str,
        data_dir: str | Path | None = None,
        resident: ResidentViews | None = None,
    ):
        super().__init__(model.config)
        if stage not in STAGES:
            raise ValidationError("stage", f"one of {', '.join(STAGES)}", repr(stage))
        if stage == "sr" and model.sr is None:
            raise GS3DError("--stage sr: this AGG config has super_resolution=false")
        self.stage = stage
        self.model = model
        self.data_dir = Path(data_dir) if data_dir is not None else None
        # A plain attribute: device tensors of the data are neither parameters nor state.
        self.__dict__["_resident"] = resident
        cfg: AGGConfig = model.config
        self._lpips = None
        # The cascade (Sec. 3.3): the super-resolution stage refines a trained coarse generator.
        if stage == "sr" and not cfg.sr_train_coarse:
            model.coarse.requires_grad_(False)
            model.encoder.requires_grad_(False)
        if stage in ("warmup", "coarse") and model.sr is not None:
            model.sr.requires_grad_(False)

    # ------------------------------------------------------------------ engine contract
    def trainer_config(self) -> TrainerConfig:
        return self.model.config.train

    def configure_optimizers(self):
        cfg: AGGConfig = self.model.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": cfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=cfg.lr,
            betas=(0.9, 0.95),
        )
        return {"model": (opt, build_scheduler(opt, cfg.lr_schedule, cfg.train.max_steps))}

    def train_dataset(self) -> Dataset:
        if self.model.config.resident_data:
            return IndexDataset(len(self.resident()))
        if self.data_dir is None:
            raise GS3DError(
                "AGG training needs --data DIR: a multi-view dataset such as "
                "`gs3d data procedural --out DIR` writes"
            )
        return training_dataset(self.model.config, self.data_dir, self.stage)

    def resident(self) -> ResidentViews:
        """The training split on the model's device (decoded on first use)."""
        cfg: AGGConfig = self.model.config
        warm_points = self.stage == "warmup" and cfg.warmup_target == "points"
        if self.stage == "warmup" and cfg.warmup_target == "fitted":
            raise GS3DError(
                "resident_data=true draws warm-up targets from the ground-truth points: train "
                "the warmup stage with warmup_target=points, or with resident_data=false to "
                "read the gaussians.ply pseudo labels"
            )
        views = self.__dict__["_resident"]
        if views is None:
            if self.data_dir is None:
                raise GS3DError(
                    "AGG training needs --data DIR: a multi-view dataset such as "
                    "`gs3d data procedural --out DIR` writes"
                )
            views = ResidentViews.from_dataset(
                self.data_dir,
                "train",
                resolution=cfg.render_resolution,
                device=self.model.device,
                points=cfg.warmup_points if warm_points else 0,
                workers=min(16, os.cpu_count() or 1),
            )
            self.__dict__["_resident"] = views
        if views.rgba.shape[2] != cfg.render_resolution:
            raise GS3DError(
                f"resident views are {views.rgba.shape[2]} px; render_resolution is "
                f"{cfg.render_resolution}"
            )
        if warm_points and (views.points is None or views.points.shape[1] < cfg.warmup_points):
            have = 0 if views.points is None else views.points.shape[1]
            raise GS3DError(
                f"resident views hold {have} points per object; the warm-up needs "
                f"warmup_points={cfg.warmup_points}"
            )
        return views

    def resident_batch(self, index: torch.Tensor) -> dict[str, Any]:
        """The samples of objects ``index [B]``, drawn on the device as the dataset would."""
        cfg: AGGConfig = self.model.config
        warm_points = self.stage == "warmup" and cfg.warmup_target == "points"
        return self.resident().sample(
            index,
            cfg.num_target_views,
            input_view="random",
            background=cfg.background,
            space="azimuth",
            num_points=cfg.warmup_points if warm_points else 0,
        )

    def loss_weights(self, step: int) -> dict[str, float]:
        c: AGGConfig = self.model.config
        if self.stage == "warmup":
            return {
                "chamfer_xyz": c.lambda_chamfer_xyz,
                "chamfer_opacity": c.lambda_chamfer_opacity,
                "chamfer_rgb": c.lambda_chamfer_rgb,
            }
        w = {"rgb": c.lambda_rgb, "alpha": c.lambda_alpha}
        if c.lambda_lpips > 0:
            w["lpips"] = c.lambda_lpips
        return w

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        cfg: AGGConfig = self.model.config
        if isinstance(batch, torch.Tensor):
            batch = self.resident_batch(batch)
        rgb_in = self.model.input_rgb(batch["input_rgba"])
        if self.stage == "warmup":
            out = self.model(rgb_in, with_sr=False)["coarse"]
            target = self.labels(batch)
            pred = {k: out[k].float() for k in ("xyz", "opacity", "rgb")}
            terms = attribute_chamfer(pred, target)
            return {f"chamfer_{k}": v for k, v in terms.items()}
        out = self.model(rgb_in, with_sr=self.stage == "sr")
        attrs = out["fine"] if self.stage == "sr" else out["coarse"]
        scale = cfg.fine_scale if self.stage == "sr" else cfg.coarse_scale
        return self.rendering_loss(canonical_gaussians(attrs, scale), batch)

    # ------------------------------------------------------------------ pieces
    def labels(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "label_xyz" in batch:
            return {
                "xyz": batch["label_xyz"],
                "opacity": batch["label_opacity"],
                "rgb": batch["label_rgb"],
            }
        pts = batch["points"]
        return {
            "xyz": pts,
            "opacity": torch.ones_like(pts[..., :1]),
            "rgb": batch["point_colors"],
        }

    def lpips(self):
        if self._lpips is None:
            from gs_losses import LPIPS

            # Kept out of the module tree: it is frozen and not part of any checkpoint.
            self._lpips = [LPIPS(self.model.config.lpips_net).to(self.model.device)]
        return self._lpips[0]

    def rendering_loss(self, gaussians, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``L_rgba + w1 L_lpips`` (eq. 4) on the batch's target views."""
        cams = batch_cameras(batch, "target")
        bg = batch["background"].float().unsqueeze(1)  # [B, 1, 3] -> every view
        r = render(gaussians, cams, background=bg)
        terms = dict(
            rgba_loss(r.rgb, r.alpha, batch["target_rgb"], batch["target_alpha"], kind="l1")
        )
        if self.model.config.lambda_lpips > 0:
            pred = r.rgb.flatten(0, 1).permute(0, 3, 1, 2)
            tgt = batch["target_rgb"].flatten(0, 1).permute(0, 3, 1, 2)
            terms["lpips"] = self.lpips()(pred.float(), tgt.float()).mean()
        return terms

    @torch.no_grad()
    def validation_step(self, step: int):
        """Input, ground truth and renders of the first training object's target views."""
        if self.model.config.resident_data:
            batch = self.resident_batch(torch.zeros(1, dtype=torch.long))
        else:
            item = self.train_dataset()[0]
            batch = {
                k: (v.unsqueeze(0).to(self.model.device) if torch.is_tensor(v) else [v])
                for k, v in item.items()
            }
        g = self.model.generate(batch["input_rgba"]).gaussians
        if self.stage != "sr" and self.model.sr is not None:
            g = self.model.generate(batch["input_rgba"]).extras["coarse"]
        r = render(g, batch_cameras(batch, "target"), background=batch["background"].unsqueeze(1))
        images = [batch["input_rgb"][0].permute(1, 2, 0)]
        images += list(batch["target_rgb"][0]) + list(r.rgb[0])
        return [im.float().cpu().clamp(0, 1) for im in images]


__all__ = ["AGGTrainingModule", "FittedLabels", "training_dataset"]

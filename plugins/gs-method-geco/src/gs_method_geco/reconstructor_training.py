"""Training the reconstructor R (LGM) on the teacher's view layout, for the offline proof: the
released LGM was trained on Objaverse renders (Sec. 4.1 of LGM); on the procedural world a small
LGM is trained here on ``gs3d data procedural --set camera_layout=zero123pp`` sets (an input
view and the six Zero123++ views relative to its azimuth).

Inputs are the six ground-truth views on Zero123++'s gray background (what G and the teacher
produce), with LGM's grid-distortion and camera-jitter augmentations; targets are all seven
views of the set on R's background, in the azimuth frame of the set's input view. The loss is
LGM's: MSE on RGB plus MSE on alpha (LPIPS off offline, as everywhere in the small preset).
This is R's pretraining, not GECO: GECO's stages never see ground-truth novel views.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gs_core.cameras import Cameras
from gs_core.errors import GS3DError
from gs_core.rendering import render
from gs_core.training import TrainerConfig, TrainingModule
from gs_method_geco.augmentations import augment_as_configured
from gs_priors.zero123plus import GRAY


class ViewSets(Dataset):
    """Zero123++ view sets of a ``camera_layout=zero123pp`` dataset split, decoded once:
    ``views [6, 3, S, S]`` (gray background), ``target_rgb [7, 3, R, R]``, ``target_alpha
    [7, 1, R, R]``, ``target_angles [7, 2]`` (azimuth relative to the input, elevation; deg)."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        input_size: int,
        render_size: int,
        background: tuple[float, float, float],
        max_objects: int | None = None,
    ):
        from gs_core.data.layout import read_split
        from gs_core.data.transforms import read_transforms
        from gs_core.data.views import load_object_views

        self.samples: list[dict[str, torch.Tensor]] = []
        bg = torch.tensor(background).view(3, 1, 1)
        ids = read_split(root, split)[:max_objects]
        for oid in ids:
            record = read_transforms(Path(root) / oid)
            sets: dict[int, list[int]] = {}
            for i, f in enumerate(record.frames):
                if "set" in f.extras:
                    sets.setdefault(int(f.extras["set"]), []).append(i)
            if not sets:
                raise GS3DError(
                    f"{Path(root) / oid}: no Zero123++ view sets; generate the data with "
                    "`gs3d data procedural --set camera_layout=zero123pp`"
                )
            views = load_object_views(record)
            rgba = (
                torch.from_numpy(np.ascontiguousarray(views.rgba)).permute(0, 3, 1, 2).float() / 255
            )
            for members in sets.values():
                groups = [record.frames[i].extras.get("group") for i in members]
                inp = members[groups.index("input")]
                six = [i for i, g in zip(members, groups, strict=True) if g == "zero123pp"]
                if len(six) != 6:
                    continue
                order = [inp, *six]
                az0 = float(record.frames[inp].extras["azimuth"])
                angles = torch.tensor(
                    [
                        [
                            (float(record.frames[i].extras["azimuth"]) - az0) % 360.0,
                            float(record.frames[i].extras["elevation"]),
                        ]
                        for i in order
                    ]
                )
                x = rgba[six]
                rgb = x[:, :3] * x[:, 3:] + GRAY * (1 - x[:, 3:])
                t = F.interpolate(
                    rgba[order],
                    (render_size, render_size),
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
                self.samples.append(
                    {
                        "views": F.interpolate(
                            rgb,
                            (input_size, input_size),
                            mode="bilinear",
                            align_corners=False,
                            antialias=True,
                        ),
                        "target_rgb": t[:, :3] * t[:, 3:] + bg * (1 - t[:, 3:]),
                        "target_alpha": t[:, 3:],
                        "target_angles": angles,
                    }
                )
        if not self.samples:
            raise GS3DError(f"{root}: split '{split}' holds no complete Zero123++ view set")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.samples[i]


def orbit_targets(angles: torch.Tensor, radius: float, fov_deg: float, size: int) -> Cameras:
    """``angles [B, V, 2]`` (relative azimuth, elevation; degrees) -> cameras ``[B, V]``, built in
    one call (a call per sample was about 5 ms of host time per step at batch 16)."""
    b, v = angles.shape[:2]
    flat = angles.reshape(b * v, 2).cpu()
    cams = Cameras.orbit(flat[:, 0], flat[:, 1], radius, fov_deg, size, size)
    return Cameras(cams.viewmats.view(b, v, 4, 4), cams.Ks.view(b, v, 3, 3), size, size)


class ReconstructorTrainingModule(TrainingModule):
    """R alone on :class:`ViewSets` (``steps`` optimiser steps at ``batch_size``, ``lr``:
    LGM's 4e-4 by default, AdamW with LGM's weight decay 0.05 and clipping 1.0)."""

    def __init__(
        self,
        model,
        dataset: ViewSets,
        steps: int,
        batch_size: int = 8,
        lr: float = 4e-4,
        augment: bool = True,
    ):
        super().__init__(None)
        self.model = model
        model.requires_grad_(False)
        model.reconstructor.requires_grad_(True)
        self.dataset = dataset
        self.steps, self.batch_size, self.lr, self.augment = steps, batch_size, lr, augment

    def trainer_config(self) -> TrainerConfig:
        return TrainerConfig(max_steps=self.steps, batch_size=self.batch_size, clip_grad_norm=1.0)

    def configure_optimizers(self):
        params = self.model.reconstructor.parameters()
        return {"reconstructor": torch.optim.AdamW(params, lr=self.lr, weight_decay=0.05)}

    def train_dataset(self) -> Dataset:
        return self.dataset

    def models(self):
        return {"reconstructor": self.model.reconstructor}

    def loss_weights(self, step: int) -> dict[str, float]:
        return {"rgb": 1.0, "alpha": 1.0}

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        m = self.model
        rc = m.config.reconstructor
        dev = m.device
        views = batch["views"].to(dev)
        cams = m.lgm_cameras(dev)
        if self.augment:
            views, cams = augment_as_configured(rc, views, cams)
        gaussians = m.reconstruct(views, cams)
        size = batch["target_rgb"].shape[-1]
        targets = orbit_targets(batch["target_angles"], rc.camera_radius, rc.fov_deg, size).to(dev)
        out = render(gaussians, targets, background=rc.background)
        rgb = out.rgb.permute(0, 1, 4, 2, 3)
        alpha = out.alpha.permute(0, 1, 4, 2, 3)
        return {
            "rgb": F.mse_loss(rgb, batch["target_rgb"].to(dev)),
            "alpha": F.mse_loss(alpha, batch["target_alpha"].to(dev)),
        }


__all__ = ["ReconstructorTrainingModule", "ViewSets", "orbit_targets"]

"""GECO's two training stages on the shared engine (``gs3d train --method geco --stage S``).

- ``vsd`` (stage I, Sec. 3.1, eq. 1-2): G against a full-U-Net student copy of the teacher
  (``gs_priors.students.copy_student``) with gs-losses' VSD. Updates alternate (Sec. 4.1): even
  engine steps update G on the VSD term, odd steps the student on eq. 2 with a fresh sample of
  G, so one paper iteration is two engine steps. Only condition images are used.
- ``joint`` (stage II, Sec. 3.2, eq. 3): G and R together, rendering R's Gaussians of G's views at
  the pseudo-ground-truth cameras, MSE (+ lambda LPIPS) against the pseudo renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from gs_core.cameras import Cameras
from gs_core.errors import GS3DError, ValidationError
from gs_core.rendering import render
from gs_core.training import TrainerConfig, TrainingModule
from gs_losses.guidance import VSD, VSDConfig
from gs_losses.guidance.timesteps import TimestepSchedule
from gs_method_geco.augmentations import augment_as_configured
from gs_method_geco.config import GECOConfig
from gs_method_geco.generator import check_teacher_layout
from gs_priors.students import copy_student


class ConditionImages(Dataset):
    """Condition images ``[N, 4, H, W]`` (RGBA in [0, 1]) as ``{"images": [4, H, W]}`` samples."""

    def __init__(self, images: torch.Tensor):
        if images.ndim != 4 or images.shape[1] != 4:
            raise ValidationError("images", "RGBA [N, 4, H, W]", str(tuple(images.shape)))
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"images": self.images[i]}


def condition_images(
    data_dir: str | Path, split: str = "train", resolution: int = 256
) -> torch.Tensor:
    """One random input view per object of a ``gs3d data`` dataset: ``[N, 4, R, R]``."""
    from gs_core.data import MultiViewConfig, MultiViewDataset

    ds = MultiViewDataset(
        data_dir,
        split,
        MultiViewConfig(resolution=resolution, num_target_views=1, input_view="random", seed=0),
    )
    return torch.stack([ds[i]["input_rgba"] for i in range(len(ds))])


def vsd_config(cfg: GECOConfig) -> VSDConfig:
    return VSDConfig(
        guidance_scale=cfg.teacher_guidance_scale,
        student_guidance_scale=cfg.student_guidance_scale,
        timesteps=TimestepSchedule(t_range=cfg.teacher_t_range),
        student_timesteps=TimestepSchedule(t_range=cfg.student_t_range),
        weighting=cfg.vsd_weighting,
        reduction="batch_mean",
    )


class VSDTrainingModule(TrainingModule):
    """Stage I. ``model``: a :class:`~gs_method_geco.model.GECO` whose G already holds the
    teacher's weights; ``teacher``: the loaded Zero123++ (frozen, not checkpointed)."""

    def __init__(
        self,
        model,
        teacher,
        data_dir: str | Path | None = None,
        images: torch.Tensor | None = None,
    ):
        super().__init__(model.config)
        check_teacher_layout(model.generator, teacher)
        self.model = model
        self.student = copy_student(teacher)
        # Frozen, shared with the student's VAE and encoders: kept out of models() and state.
        self.__dict__["teacher"] = teacher
        self.vsd = VSD(teacher, self.student, vsd_config(model.config))
        model.requires_grad_(False)
        model.generator.unet.requires_grad_(True)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.images = images

    def trainer_config(self) -> TrainerConfig:
        cfg: GECOConfig = self.model.config
        return TrainerConfig(max_steps=2 * cfg.vsd_iterations, batch_size=cfg.vsd_batch_size)

    def configure_optimizers(self):
        cfg: GECOConfig = self.model.config
        return {
            "generator": torch.optim.Adam(
                self.model.generator.unet.parameters(), lr=cfg.lr_generator, betas=cfg.adam_betas
            ),
            "student": torch.optim.Adam(
                self.student.unet.parameters(), lr=cfg.lr_student, betas=cfg.adam_betas
            ),
        }

    def optimizers_to_step(self, step: int):
        return ["generator"] if step % 2 == 0 else ["student"]

    def loss_weights(self, step: int) -> dict[str, float]:
        return {"vsd": 1.0, "student": 1.0}

    def train_dataset(self) -> Dataset:
        if self.images is not None:
            return ConditionImages(self.images)
        if self.data_dir is None:
            raise GS3DError(
                "GECO stage vsd needs --data DIR: a dataset whose input views are the condition "
                "images (`gs3d data procedural --out DIR`)"
            )
        return ConditionImages(condition_images(self.data_dir))

    def models(self):
        return {"model": self.model, "student": self.student.unet}

    def training_step(
        self, batch: dict[str, Any], step: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        g = self.model.generator
        images = batch["images"].to(g.device)
        cond = g.encode_condition(images, generator)
        noise = g.sample_noise(images.shape[0], generator)
        if step % 2 == 0:
            x0 = g(noise, cond)
            out = self.vsd.compute(
                latents=x0, condition=cond, student_condition=cond, generator=generator
            )
            return {"vsd": out.loss}
        with torch.no_grad():
            x0 = g(noise, cond)
        return {"student": self.vsd.student_loss(x0, cond, generator=generator)}


class PseudoViews(Dataset):
    """Pseudo ground truth as samples: condition image, noise and ``joint_views`` of the renders
    (a random subset each time it is read)."""

    def __init__(self, data: dict[str, torch.Tensor], views: int, seed: int = 0):
        self.data = data
        self.views = views
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.data["images"].shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = self.data["rgb"].shape[1]
        pick = torch.randperm(n, generator=self.gen)[: min(self.views, n)]
        return {
            "images": self.data["images"][i],
            "noise": self.data["noise"][i],
            "viewmats": self.data["viewmats"][i, pick],
            "Ks": self.data["Ks"][i, pick],
            "rgb": self.data["rgb"][i, pick],
        }


class JointTrainingModule(TrainingModule):
    """Stage II: G (its U-Net) and R trained together on pseudo ground truth (eq. 3)."""

    def __init__(
        self,
        model,
        pseudo_dir: str | Path | None = None,
        data: dict[str, torch.Tensor] | None = None,
    ):
        super().__init__(model.config)
        self.model = model
        model.requires_grad_(False)
        model.generator.unet.requires_grad_(True)
        model.reconstructor.requires_grad_(True)
        self.pseudo_dir = Path(pseudo_dir) if pseudo_dir is not None else None
        self.__dict__["_data"] = data
        self._lpips = None

    def _pseudo(self) -> dict[str, torch.Tensor]:
        if self._data is None:
            if self.pseudo_dir is None:
                raise GS3DError(
                    "GECO stage joint needs its pseudo ground truth: --data DIR holding "
                    "pseudo_ground_truth.safetensors (scripts/train_small.py writes one)"
                )
            from gs_method_geco.pseudo_ground_truth import load_pseudo_ground_truth

            self.__dict__["_data"] = load_pseudo_ground_truth(
                self.pseudo_dir / "pseudo_ground_truth.safetensors"
            )
        return self._data

    def trainer_config(self) -> TrainerConfig:
        cfg: GECOConfig = self.model.config
        n = self._pseudo()["images"].shape[0]
        steps = max(1, cfg.joint_epochs * -(-n // cfg.joint_batch_size))
        return TrainerConfig(max_steps=steps, batch_size=cfg.joint_batch_size)

    def configure_optimizers(self):
        cfg: GECOConfig = self.model.config
        params = [*self.model.generator.unet.parameters(), *self.model.reconstructor.parameters()]
        return {"model": torch.optim.Adam(params, lr=cfg.lr_joint, betas=cfg.adam_betas)}

    def train_dataset(self) -> Dataset:
        return PseudoViews(self._pseudo(), self.model.config.joint_views)

    def models(self):
        return {"model": self.model}

    def loss_weights(self, step: int) -> dict[str, float]:
        cfg: GECOConfig = self.model.config
        weights = {"mse": cfg.lambda_mse}
        if cfg.lambda_lpips > 0:
            weights["lpips"] = cfg.lambda_lpips
        return weights

    @property
    def lpips(self):
        if self._lpips is None:
            from gs_losses import LPIPS

            self._lpips = LPIPS(net=self.model.config.lpips_net).to(self.model.device)
        return self._lpips

    def training_step(
        self, batch: dict[str, Any], step: int, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        m = self.model
        cfg: GECOConfig = m.config
        dev = m.device
        images = batch["images"].to(dev)
        cond = m.generator.encode_condition(images, generator)
        views = m.views(batch["noise"].to(dev), cond)
        cams = m.lgm_cameras(dev)
        if cfg.augment_joint:
            views, cams = augment_as_configured(cfg.reconstructor, views, cams, generator)
        gaussians = m.reconstruct(views, cams)
        target = batch["rgb"].to(dev)
        size = target.shape[-1]
        targets = Cameras(batch["viewmats"].to(dev), batch["Ks"].to(dev), size, size)
        rgb = render(gaussians, targets, background=cfg.reconstructor.background).rgb
        pred = rgb.permute(0, 1, 4, 2, 3)  # [B, V, 3, S, S]
        terms = {"mse": F.mse_loss(pred, target)}
        if cfg.lambda_lpips > 0:
            terms["lpips"] = self.lpips(pred.flatten(0, 1), target.flatten(0, 1)).mean()
        return terms


__all__ = [
    "ConditionImages",
    "JointTrainingModule",
    "PseudoViews",
    "VSDTrainingModule",
    "condition_images",
    "vsd_config",
]

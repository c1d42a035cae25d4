"""Compress3D's training stages on the shared engine (``gs3d train --method compress3d --stage S``).

- ``encoders``: the procedural contrastive encoders (InfoNCE between an object's input view and
  its coloured point cloud); skipped (nothing to train) for the paper's OpenCLIP / OpenShape.
- ``autoencoder`` (Sec. 3.1): the triplane VAE on Eq. 12: renders of the decoded FlexiCubes mesh
  against the ground-truth RGB, mask and depth of ``loss.views`` views, KL, FlexiCubes
  regularisers.
- ``prior`` (Sec. 3.2): x0-prediction L1 (Eq. 13) from the input view's image embedding to the
  object's shape embedding (encoders frozen).
- ``diffusion`` (Sec. 3.3): eps-prediction L1 (Eq. 14) on latents of the frozen encoder
  (posterior samples times ``unet.latent_scale``), with the paper's condition dropout.

Samples come from :class:`gs_core.data.MultiViewDataset` in world space (Compress3D generates
in the objects' canonical frame, Sec. 4.3) on a white background.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gs_core.data import MultiViewConfig, MultiViewDataset, batch_cameras
from gs_core.errors import GS3DError, ValidationError
from gs_core.training import ScheduleConfig, TrainerConfig, TrainingModule, build_scheduler
from gs_method_compress3d.autoencoder import surface_sdf
from gs_method_compress3d.config import STAGES, Compress3DConfig
from gs_method_compress3d.guidance import condition_dropout
from gs_method_compress3d.losses import autoencoder_loss, render_shapes


def stage_dataset(
    config: Compress3DConfig, data_dir: str | Path, stage: str, split: str = "train"
) -> MultiViewDataset:
    """The samples ``stage`` trains on: input view and coloured points, plus (autoencoder) the
    target views with depth."""
    points = (
        config.encoder.num_points
        if stage in ("autoencoder", "diffusion")
        else config.embeddings.shape_points
    )
    if stage in ("prior", "diffusion") and config.embeddings.kind == "procedural":
        points = max(points, config.embeddings.shape_points)
    ae = stage == "autoencoder"
    mv = MultiViewConfig(
        resolution=config.loss.render_resolution if ae else config.embeddings.image_size,
        num_target_views=config.loss.views if ae else 1,
        input_view="random",
        background="white",
        space="world",
        load_depth=ae,
        load_points=True,
        num_points=points,
    )
    return MultiViewDataset(data_dir, split, mv)


class Compress3DTrainingModule(TrainingModule):
    """One Compress3D stage; the engine checkpoints ``model`` (the whole :class:`Compress3D`)."""

    def __init__(self, model, stage: str, data_dir: str | Path | None = None):
        super().__init__(model.config)
        if stage not in STAGES:
            raise ValidationError("stage", f"one of {', '.join(STAGES)}", repr(stage))
        cfg: Compress3DConfig = model.config
        if stage == "encoders" and model.encoders is None:
            raise GS3DError(
                "--stage encoders trains the procedural contrastive encoders; this config uses "
                "embeddings.kind='openshape' (pretrained OpenCLIP / OpenShape): start at "
                "--stage autoencoder"
            )
        self.stage = stage
        self.model = model
        self.data_dir = Path(data_dir) if data_dir is not None else None
        model.requires_grad_(False)
        trained = {
            "encoders": model.encoders,
            "autoencoder": model.autoencoder,
            "prior": model.prior,
            "diffusion": model.unet,
        }[stage]
        trained.requires_grad_(True)
        if stage == "diffusion" and not cfg.unet.use_prior:
            # "w/o prior" never sees a shape embedding: its null stays fixed.
            model.unet.null_shape.requires_grad_(False)

    # ------------------------------------------------------------------ engine contract
    def trainer_config(self) -> TrainerConfig:
        t = self.model.config.train
        return t.trainer.model_copy(
            update={"max_steps": t.stage_steps[self.stage], "batch_size": t.stage_batch[self.stage]}
        )

    def configure_optimizers(self):
        t = self.model.config.train
        lr, end = {
            "encoders": (t.lr_encoders, t.lr_encoders * 0.1),
            "autoencoder": (t.lr_autoencoder, t.lr_autoencoder_end),
            "prior": (t.lr_prior, t.lr_prior_end),
            "diffusion": (t.lr_unet, t.lr_unet_end),
        }[self.stage]
        params = [p for p in self.model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": t.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=lr,
        )
        sched = ScheduleConfig(kind=t.decay, final_ratio=end / lr)
        return {"model": (opt, build_scheduler(opt, sched, t.stage_steps[self.stage]))}

    def train_dataset(self) -> Dataset:
        if self.data_dir is None:
            raise GS3DError(
                "Compress3D training needs --data DIR: a multi-view dataset with surface points "
                "such as `gs3d data procedural --out DIR` writes"
            )
        return stage_dataset(self.model.config, self.data_dir, self.stage)

    def loss_weights(self, step: int) -> dict[str, float]:
        loss = self.model.config.loss
        if self.stage == "autoencoder":
            return {
                "rgb": loss.lambda_rgb,
                "mask": loss.lambda_mask,
                "depth": loss.lambda_depth,
                "kl": loss.lambda_kl,
                "dev": loss.lambda_dev,
                "sdf_reg": loss.lambda_sdf_reg,
                "empty_surface": loss.lambda_empty_surface,
            }
        if self.stage == "encoders":
            return {"contrastive": 1.0, "retrieval_acc": 0.0}
        if self.stage == "prior":
            return {"prior_l1": 1.0}
        return {"eps_l1": 1.0}

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        m = self.model
        if self.stage == "encoders":
            terms = m.encoders.loss(
                m.input_rgb(batch["input_rgba"]), batch["points"], batch["point_colors"]
            )
            return {k: v for k, v in terms.items() if k != "loss"}
        if self.stage == "autoencoder":
            terms = self.autoencoder_terms(batch)
            return {k: v for k, v in terms.items() if k != "loss"}
        with torch.no_grad():
            e_p = m.image_embedding(m.input_rgb(batch["input_rgba"]))
            e_s = m.shape_embedding(batch["points"], batch["point_colors"])
        if self.stage == "prior":
            terms = m.prior.loss(e_s, e_p)
            return {"prior_l1": terms["prior_l1"]}
        return self.diffusion_terms(batch, e_s, e_p)

    # ------------------------------------------------------------------ pieces
    def autoencoder_terms(
        self, batch: dict[str, Any], sample: bool = True
    ) -> dict[str, torch.Tensor]:
        """Eq. 12's named terms (and their weighted sum ``loss``) for one batch; ``sample=False``
        decodes the posterior mean (evaluation)."""
        ae = self.model.autoencoder
        posterior = ae.encode(batch["points"], batch["point_colors"])
        planes = ae.decode(posterior.sample() if sample else posterior.mode())
        shapes = ae.extract(planes, training=True, allow_empty=True)
        renders = render_shapes(shapes, batch_cameras(batch, "target"), background=1.0)
        empty = [
            surface_sdf(ae.heads, planes[b].float(), batch["points"][b] / ae.half_extent)
            for b, s in enumerate(shapes)
            if s.mesh is None
        ]
        return autoencoder_loss(
            shapes,
            posterior,
            renders,
            batch["target_rgb"],
            batch["target_alpha"],
            batch["target_depth"],
            self.model.config.loss,
            empty_surface=torch.stack(empty).sum() / len(shapes) if empty else None,
        )

    def diffusion_terms(
        self, batch: dict[str, Any], e_s: torch.Tensor, e_p: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Eq. 14 with the condition dropout of Sec. 3.3."""
        m, u = self.model, self.model.config.unet
        with torch.no_grad():
            z0 = m.autoencoder.encode(batch["points"], batch["point_colors"]).sample()
            z0 = z0 * u.latent_scale
        b = z0.shape[0]
        drop_s, drop_i = condition_dropout(b, u.drop_image, u.drop_shape, u.drop_both, z0.device)
        if not u.use_prior:
            drop_s = torch.ones_like(drop_s)
        t = torch.randint(0, u.steps, (b,), device=z0.device)
        noise = torch.randn_like(z0)
        ctx = m.unet.context(e_s, e_p, drop_s, drop_i)
        eps = m.unet(m.schedule.add_noise(z0, noise, t), t, ctx)
        return {"eps_l1": (eps - noise).abs().mean()}


__all__ = ["Compress3DTrainingModule", "stage_dataset"]

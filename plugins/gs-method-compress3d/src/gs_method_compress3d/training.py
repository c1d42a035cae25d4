"""Compress3D's training stages on the shared engine (``gs3d train --method compress3d --stage S``).

- ``encoders``: the procedural contrastive encoders; skipped (nothing to train) for the
  paper's OpenCLIP / OpenShape. In OpenShape's order (``embeddings.alignment='openshape'``) the
  first ``image_share`` of the steps train the image encoder alone (InfoNCE between the input
  view and another view of each object), the rest the shape encoder against the frozen image
  embeddings of the input view, each part with its own optimiser and LR schedule; 'joint'
  trains both at once (InfoNCE between the input view and the coloured point cloud).
- ``autoencoder`` (Sec. 3.1): the triplane VAE on Eq. 12: renders of the decoded FlexiCubes mesh
  against the ground-truth RGB, mask and depth of ``loss.views`` views, KL, FlexiCubes
  regularisers.
- ``prior`` (Sec. 3.2): x0-prediction L1 (Eq. 13) from the input view's image embedding to the
  object's shape embedding (encoders frozen).
- ``diffusion`` (Sec. 3.3): eps-prediction L1 (Eq. 14) on latents of the frozen encoder
  (posterior samples times ``unet.latent_scale``), with the paper's condition dropout.

Samples are in world space (Compress3D generates in the objects' canonical frame, Sec. 4.3) on
a white background. With ``train.resident_data`` (the ``small`` and ``tiny`` presets) the split
is decoded once onto the training device (:class:`gs_core.data.resident.ResidentViews`), the
engine streams object indices and ``training_step`` draws the samples there; the prior and
diffusion stages also embed the split once at their start (:func:`frozen_inputs`). Otherwise
DataLoader workers build each sample with :class:`gs_core.data.MultiViewDataset`
(:func:`stage_dataset`) and the frozen embeddings are recomputed every step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from gs_core.data import MultiViewConfig, MultiViewDataset, batch_cameras
from gs_core.data.resident import IndexDataset, ResidentViews
from gs_core.errors import GS3DError, ValidationError
from gs_core.training import ScheduleConfig, TrainerConfig, TrainingModule, build_scheduler
from gs_method_compress3d.autoencoder import surface_sdf
from gs_method_compress3d.config import STAGES, Compress3DConfig
from gs_method_compress3d.guidance import condition_dropout
from gs_method_compress3d.losses import autoencoder_loss, render_shapes
from gs_method_compress3d.posterior import DiagonalGaussian

# Stages whose conditioning (and, for diffusion, latents) come from frozen encoders.
FROZEN_STAGES = ("prior", "diffusion")


def stage_points(config: Compress3DConfig, stage: str) -> int:
    """Coloured surface points per sample of ``stage``."""
    points = (
        config.encoder.num_points
        if stage in ("autoencoder", "diffusion")
        else config.embeddings.shape_points
    )
    if stage in FROZEN_STAGES and config.embeddings.kind == "procedural":
        points = max(points, config.embeddings.shape_points)
    return points


def stage_views(config: Compress3DConfig, stage: str) -> tuple[int, int]:
    """``(resolution, target views)`` of ``stage``'s samples: the autoencoder renders
    ``loss.views`` views; the other stages read the input view at the image encoder's size."""
    if stage == "autoencoder":
        return config.loss.render_resolution, config.loss.views
    return config.embeddings.image_size, 1


def stage_dataset(
    config: Compress3DConfig, data_dir: str | Path, stage: str, split: str = "train"
) -> MultiViewDataset:
    """The samples ``stage`` trains on: input view and coloured points, plus (autoencoder) the
    target views with depth."""
    resolution, views = stage_views(config, stage)
    mv = MultiViewConfig(
        resolution=resolution,
        num_target_views=views,
        input_view="random",
        background="white",
        space="world",
        load_depth=stage == "autoencoder",
        load_points=True,
        num_points=stage_points(config, stage),
    )
    return MultiViewDataset(data_dir, split, mv)


def resident_points(config: Compress3DConfig) -> int:
    """Points kept per object on the device: one count for every stage, so that the stages
    share one cache file per resolution."""
    enc, emb = config.encoder, config.embeddings
    return max(config.train.resident_points, enc.num_points, emb.shape_points)


@torch.no_grad()
def image_embeddings(model, views: ResidentViews, chunk: int) -> torch.Tensor:
    """``e_p [N, V, D]`` of every resident view, as a step embeds its input view."""
    rgba = views.rgba.flatten(0, 1)  # [N * V, H, W, 4] uint8
    out = []
    for i in range(0, rgba.shape[0], chunk):
        # scaled as ResidentViews.sample scales its input_rgba
        x = rgba[i : i + chunk].float().mul_(1.0 / 255.0).permute(0, 3, 1, 2)
        out.append(model.image_embedding(model.input_rgb(x)))
    return torch.cat(out).unflatten(0, (views.num_objects, views.num_views))


@torch.no_grad()
def frozen_inputs(model, views: ResidentViews, stage: str, chunk: int) -> dict[str, torch.Tensor]:
    """What ``stage`` (prior or diffusion) reads from frozen encoders, for the whole split:
    ``image_embedding [N, V, D]``, ``shape_embedding [N, D]`` and, for diffusion, the
    autoencoder posterior ``latent_mean`` / ``latent_logvar [N, 3, c', r', r']``.

    Shapes are embedded (and encoded) from their first ``stage_points`` resident points: a
    fixed uniform draw, as ``ResidentViews`` keeps a seeded random subset of each cloud."""
    if views.points is None:
        raise GS3DError(
            "frozen_inputs(views): the resident views hold no points (build them with points=P)"
        )
    n = stage_points(model.config, stage)
    out = {"image_embedding": image_embeddings(model, views, chunk)}
    shapes, means, logvars = [], [], []
    for i in range(0, views.num_objects, chunk):
        xyz, rgb = views.points[i : i + chunk, :n], views.point_colors[i : i + chunk, :n]
        shapes.append(model.shape_embedding(xyz, rgb))
        if stage == "diffusion":
            posterior = model.autoencoder.encode(xyz, rgb)
            means.append(posterior.mean.float())
            logvars.append(posterior.logvar.float())
    out["shape_embedding"] = torch.cat(shapes)
    if stage == "diffusion":
        out["latent_mean"], out["latent_logvar"] = torch.cat(means), torch.cat(logvars)
    return out


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
        # Plain attributes: device copies of the data, neither parameters nor training state.
        self._resident: ResidentViews | None = None
        self._frozen: dict[str, torch.Tensor] | None = None
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
        update = {"max_steps": t.stage_steps[self.stage], "batch_size": t.stage_batch[self.stage]}
        if t.resident_data:
            update["num_workers"] = 0  # the stream yields indices: workers would only add IPC
        return t.trainer.model_copy(update=update)

    def image_steps(self) -> int:
        """Steps of the encoders stage that train the image encoder alone (OpenShape's
        order); 0 for joint training and for the other stages."""
        cfg = self.model.config
        if self.stage != "encoders" or cfg.embeddings.alignment != "openshape":
            return 0
        n = cfg.train.stage_steps["encoders"]
        return min(max(1, round(n * cfg.embeddings.image_share)), n - 1) if n > 1 else 0

    def optimizers_to_step(self, step: int):
        if not self.image_steps():
            return None
        return ["image"] if step < self.image_steps() else ["shape"]

    def configure_optimizers(self):
        t = self.model.config.train
        if self.image_steps():
            enc = self.model.encoders
            n_image = self.image_steps()
            parts = {
                "image": ([*enc.image.parameters(), enc.view_log_scale], n_image),
                "shape": (
                    [*enc.shape.parameters(), enc.log_scale],
                    t.stage_steps["encoders"] - n_image,
                ),
            }
            return {
                name: self._adamw(params, t.lr_encoders, t.lr_encoders * 0.1, steps)
                for name, (params, steps) in parts.items()
            }
        lr, end = {
            "encoders": (t.lr_encoders, t.lr_encoders * 0.1),
            "autoencoder": (t.lr_autoencoder, t.lr_autoencoder_end),
            "prior": (t.lr_prior, t.lr_prior_end),
            "diffusion": (t.lr_unet, t.lr_unet_end),
        }[self.stage]
        params = [p for p in self.model.parameters() if p.requires_grad]
        return {"model": self._adamw(params, lr, end, t.stage_steps[self.stage])}

    def _adamw(self, params: list, lr: float, end: float, steps: int):
        """AdamW (no decay on biases, norms and scales) with the ``train.decay`` schedule from
        ``lr`` to ``end`` over ``steps`` of its own."""
        t = self.model.config.train
        opt = torch.optim.AdamW(
            [
                {"params": [p for p in params if p.ndim >= 2], "weight_decay": t.weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
            ],
            lr=lr,
        )
        sched = ScheduleConfig(kind=t.decay, final_ratio=end / lr)
        return opt, build_scheduler(opt, sched, steps)

    def train_dataset(self) -> Dataset:
        if not self.model.config.train.resident_data:
            return stage_dataset(self.model.config, self.dataset_dir(), self.stage)
        views = self.resident()
        if self.stage in FROZEN_STAGES:
            self.frozen()  # at the start of the stage, before the engine seeds its RNG
        return IndexDataset(len(views))

    def dataset_dir(self) -> Path:
        if self.data_dir is None:
            raise GS3DError(
                "Compress3D training needs --data DIR: a multi-view dataset with surface points "
                "such as `gs3d data procedural --out DIR` writes"
            )
        return self.data_dir

    def resident(self) -> ResidentViews:
        """The training split at this stage's resolution on the model's device (decoded, or
        read from the dataset's cache, on first use); with depth for the autoencoder."""
        if self._resident is None:
            cfg = self.model.config
            self._resident = ResidentViews.from_dataset(
                self.dataset_dir(),
                "train",
                resolution=stage_views(cfg, self.stage)[0],
                device=self.model.device,
                points=resident_points(cfg),
                depth=self.stage == "autoencoder",
                workers=min(16, os.cpu_count() or 1),
            )
        return self._resident

    def frozen(self) -> dict[str, torch.Tensor]:
        """:func:`frozen_inputs` of this stage, computed once on the device."""
        if self._frozen is None:
            # The image and shape encoders (and, in diffusion, the autoencoder) are frozen in
            # these stages: one pass over the split replaces their forward on every step.
            chunk = self.model.config.train.stage_batch[self.stage]
            self._frozen = frozen_inputs(self.model, self.resident(), self.stage, chunk)
            # The steps of these stages read only the cache: free the views (GBs on the GPU).
            self._resident = None
        return self._frozen

    def resident_batch(self, index: torch.Tensor) -> dict[str, Any]:
        """The samples of objects ``index [B]``, drawn on the device as :func:`stage_dataset`
        draws them; for the prior and diffusion stages, their frozen inputs."""
        if self.stage in FROZEN_STAGES:
            return self.frozen_batch(index)
        cfg = self.model.config
        return self.resident().sample(
            index,
            stage_views(cfg, self.stage)[1],
            input_view="random",
            background="white",
            space="world",
            num_points=stage_points(cfg, self.stage),
        )

    def frozen_batch(self, index: torch.Tensor) -> dict[str, Any]:
        """Objects ``index [B]`` with a random input view each (drawn as
        ``ResidentViews.sample`` draws it) and the cached embeddings (and posterior) of those:
        all that the prior and diffusion steps read."""
        f = self.frozen()
        emb = f["image_embedding"]
        idx = torch.as_tensor(index, dtype=torch.long).to(emb.device).reshape(-1)
        view = torch.randint(emb.shape[1], idx.shape, device=emb.device)
        batch = {
            "index": idx,
            "input_index": view,
            "image_embedding": emb[idx, view],
            "shape_embedding": f["shape_embedding"][idx],
        }
        if self.stage == "diffusion":
            batch["latent_mean"] = f["latent_mean"][idx]
            batch["latent_logvar"] = f["latent_logvar"][idx]
        return batch

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
            return {
                "contrastive": 1.0,
                "retrieval_acc": 0.0,
                "view_contrastive": 1.0,
                "view_retrieval_acc": 0.0,
            }
        if self.stage == "prior":
            return {"prior_l1": 1.0}
        return {"eps_l1": 1.0}

    def training_step(self, batch: dict[str, Any], step: int) -> dict[str, torch.Tensor]:
        m = self.model
        if isinstance(batch, torch.Tensor):
            batch = self.resident_batch(batch)
        if self.stage == "encoders":
            rgb = m.input_rgb(batch["input_rgba"])
            if step < self.image_steps():
                other = batch["target_rgb"][:, 0].permute(0, 3, 1, 2)  # another view, on white
                terms = m.encoders.view_loss(rgb, other)
            else:
                terms = m.encoders.loss(
                    rgb, batch["points"], batch["point_colors"], image_frozen=self.image_steps() > 0
                )
            return {k: v for k, v in terms.items() if k != "loss"}
        if self.stage == "autoencoder":
            terms = self.autoencoder_terms(batch)
            return {k: v for k, v in terms.items() if k != "loss"}
        e_s, e_p = self.conditions(batch)
        if self.stage == "prior":
            terms = m.prior.loss(e_s, e_p)
            return {"prior_l1": terms["prior_l1"]}
        return self.diffusion_terms(batch, e_s, e_p)

    # ------------------------------------------------------------------ pieces
    def conditions(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen shape and image embeddings ``e_s, e_p [B, D]`` of a batch: cached ones
        (resident data), else computed from its input view and points."""
        if "shape_embedding" in batch:
            return batch["shape_embedding"], batch["image_embedding"]
        m = self.model
        with torch.no_grad():
            e_p = m.image_embedding(m.input_rgb(batch["input_rgba"]))
            e_s = m.shape_embedding(batch["points"], batch["point_colors"])
        return e_s, e_p

    def posterior(self, batch: dict[str, Any]) -> DiagonalGaussian:
        """The frozen autoencoder's posterior of each object of a batch (cached, or encoded)."""
        if "latent_mean" in batch:
            return DiagonalGaussian(batch["latent_mean"], batch["latent_logvar"])
        with torch.no_grad():
            return self.model.autoencoder.encode(batch["points"], batch["point_colors"])

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
        z0 = self.posterior(batch).sample() * u.latent_scale
        b = z0.shape[0]
        drop_s, drop_i = condition_dropout(b, u.drop_image, u.drop_shape, u.drop_both, z0.device)
        if not u.use_prior:
            drop_s = torch.ones_like(drop_s)
        t = torch.randint(0, u.steps, (b,), device=z0.device)
        noise = torch.randn_like(z0)
        ctx = m.unet.context(e_s, e_p, drop_s, drop_i)
        eps = m.unet(m.schedule.add_noise(z0, noise, t), t, ctx)
        return {"eps_l1": (eps - noise).abs().mean()}


__all__ = [
    "Compress3DTrainingModule",
    "frozen_inputs",
    "image_embeddings",
    "stage_dataset",
    "stage_points",
    "stage_views",
]

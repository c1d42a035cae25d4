"""DD3G's distillation on the shared engine (Sec. III-C, IV-A).

Each step draws quadruples ``{N, C, II, OI}`` (:mod:`gs_method_dd3g.quadruples`), runs the
student on ``(II, N, C)`` and minimises the named terms ``es_mse``, ``es_lpips`` (Eq. 3-4),
``iv`` (Eq. 5, through the teacher) and ``opacity`` (Eq. 7), weighted by the curriculum of
Eq. 6 (:mod:`gs_method_dd3g.curriculum`). Adam at ``lr``, EMA and clipping by value come from
``config.train`` (IV-A: 1e-5, EMA, (-5, 5)). The student never sees ground-truth multi-view
images: its only targets are the teacher's outputs and the teacher's scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gs_core.data.resident import IndexDataset
from gs_core.errors import GS3DError, ValidationError
from gs_core.training import TrainerConfig, TrainingModule
from gs_losses import opacity_regularizer
from gs_method_dd3g.cameras import plucker_inputs
from gs_method_dd3g.config import DD3GConfig
from gs_method_dd3g.curriculum import objective_weights
from gs_method_dd3g.explicit_supervision import explicit_supervision
from gs_method_dd3g.implicit_verification import implicit_verification, verification_sds
from gs_method_dd3g.model import DD3G, gaussians_from_attributes
from gs_method_dd3g.quadruples import QuadrupleSet
from gs_method_dd3g.verifier_references import VerifierReferences


def _load_teacher(teacher, device):
    if teacher is None or not isinstance(teacher, (str, Path)):
        return teacher
    from gs_priors import ImageDreamGuidance

    return ImageDreamGuidance.from_pretrained(teacher, device=device)


class DD3GTrainingModule(TrainingModule):
    """The student and its objective; the engine checkpoints ``model`` (the whole :class:`DD3G`).

    Args:
        model: the student.
        quadruples: a :class:`QuadrupleSet` or the directory holding one (needed unless the
            objective is ``iv``, which still draws its inputs II and ``C`` from it).
        teacher: ``ImageDreamGuidance`` or its checkpoint directory (the verifier of ``iv``);
            kept out of the module tree (frozen, not part of any checkpoint).
    """

    def __init__(self, model: DD3G, quadruples=None, teacher=None):
        super().__init__(model.config)
        self.model = model
        cfg: DD3GConfig = model.config
        if quadruples is None:
            raise GS3DError(
                "DD3G training needs quadruples: a directory written by "
                "gs_method_dd3g.quadruples.generate_quadruples(...).save(DIR)"
            )
        quads = (
            quadruples if isinstance(quadruples, QuadrupleSet) else QuadrupleSet.load(quadruples)
        )
        lat = (cfg.num_views, cfg.latent_channels, cfg.latent_size, cfg.latent_size)
        if tuple(quads.noise.shape[1:]) != lat:
            raise ValidationError(
                "quadruples.noise",
                f"[Q, {', '.join(map(str, lat))}] (the config's noise)",
                str(tuple(quads.noise.shape)),
            )
        self.__dict__["_quads"] = quads.to(model.device)
        needs_teacher = cfg.objective in ("joint", "iv")
        if needs_teacher and teacher is None:
            raise GS3DError(
                f"DD3G objective '{cfg.objective}' needs the teacher (teacher=DIR of an "
                "ImageDream checkpoint) for implicit verification; objective=es does not"
            )
        t = _load_teacher(teacher, model.device)
        self.__dict__["_teacher"] = t
        self.__dict__["_sds"] = verification_sds(t, cfg) if t is not None else None
        # The verifier's encoding of every input image, made once (VerifierReferences).
        self.__dict__["_references"] = (
            VerifierReferences(
                t,
                self.__dict__["_quads"].images,
                rows_per_image=self.__dict__["_quads"].meta.get("per_image", 1),
            )
            if needs_teacher
            else None
        )
        self._lpips = None

    # ------------------------------------------------------------------ engine contract
    def trainer_config(self) -> TrainerConfig:
        return self.model.config.train

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        return {"model": torch.optim.Adam(params, lr=self.model.config.lr)}

    def train_dataset(self):
        return IndexDataset(len(self.__dict__["_quads"]))

    def loss_weights(self, step: int) -> dict[str, float]:
        c: DD3GConfig = self.model.config
        return objective_weights(
            c.objective,
            step,
            c.train.max_steps,
            eta=c.eta,
            lambda_mse=c.lambda_mse,
            lambda_lpips=c.lambda_lpips,
            lambda_opacity=c.lambda_opacity,
            iv_only_weight=c.iv_only_weight,
        )

    def lpips(self):
        if self._lpips is None:
            from gs_losses import LPIPS

            self._lpips = [LPIPS(self.model.config.lpips_net).to(self.model.device)]
        return self._lpips[0]

    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        cfg: DD3GConfig = self.model.config
        index = batch if isinstance(batch, torch.Tensor) else torch.as_tensor(batch)
        quads = self.__dict__["_quads"]
        q = quads.batch(index)
        azimuths, elevations = quads.host_angles(index)
        weights = self.loss_weights(step)
        m = self.model
        cams_lat = m.view_cameras(azimuths, elevations, cfg.latent_size)
        attrs = m(m.input_rgb(q["images"]), q["noise"], plucker_inputs(cams_lat, cfg.latent_size))
        g = gaussians_from_attributes(attrs)
        terms: dict[str, torch.Tensor] = {}
        if "es_mse" in weights or "es_lpips" in weights:
            cams = m.view_cameras(azimuths, elevations)
            lp = self.lpips() if "es_lpips" in weights else None
            es = explicit_supervision(g, cams, q["outputs"], cfg.es_background, lp)
            terms.update({k: v for k, v in es.items() if k in weights})
        if "iv" in weights:
            refs = self.__dict__["_references"]
            terms.update(
                implicit_verification(
                    g,
                    q["images"],
                    self.__dict__["_teacher"],
                    self.__dict__["_sds"],
                    cfg,
                    references=lambda generator: refs.reference(index, generator),
                    step_ratio=min(1.0, step / max(1, cfg.train.max_steps)),
                )
            )
        if "opacity" in weights:
            terms["opacity"] = opacity_regularizer(g.opacities)["opacity"]
        return terms


__all__ = ["DD3GTrainingModule"]

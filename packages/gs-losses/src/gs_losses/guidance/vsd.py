"""Variational Score Distillation (ProlificDreamer, Wang et al. 2023; GECO stage I, eq. 1-2).

Generator gradient (GECO eq. 1; the VSD gradient of ProlificDreamer):

``grad_theta L_VSD = E_{t, eps}[ w(t) (eps_pre(x_t; y, t) - eps_stu(x_t; y, t)) dx/dtheta ]``

i.e. SDS with the sampled noise ``eps`` replaced by a *student* score model's prediction on the
same ``x_t``; both predictions use classifier-free guidance with their own scales (GECO: 4 for
the teacher, 1 for the student; ProlificDreamer: 7.5 and 1). Writing it as
``w (eps_pre - eps) - w (eps_stu - eps)`` shows VSD = SDS minus the student's term.

Student objective (GECO eq. 2), trained online on the generator's detached samples with a fresh
``t`` and ``eps``: ``L_stu = E ||eps_stu(x_t; y, t) - eps||^2`` - for a v- or x0-predicting
student the regression target is v or x0, as for any diffusion model of that kind.

Generator and student are updated alternately (one optimiser step each per iteration, GECO
section 4.1); ``VSD.__call__`` returns both terms, ``{"vsd": ..., "student": ...}``, whose
gradients are disjoint: ``vsd`` reaches only the generator (both predictions run without
autograd), ``student`` only the student (the generator output is detached).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from gs_core.config import Config
from gs_core.errors import ValidationError
from gs_losses.guidance.noise import add_noise, guided_noise, prediction_target
from gs_losses.guidance.sds import SDS, Conditions, ScoreDistillationOutput, surrogate_loss
from gs_losses.guidance.timesteps import TimestepSchedule
from gs_losses.terms import LossTerms
from gs_priors.prior import Condition, DiffusionPrior, check_prior


class VSDConfig(Config):
    """VSD settings: teacher CFG and timesteps as in SDS, plus the student's.

    ``student_timesteps``: where the student is trained (GECO: ``[0.02, 0.98]``;
    ProlificDreamer trains its LoRA on all of ``[0, T)``).
    ``student_samples``: timesteps drawn per generator sample for the student loss.
    """

    guidance_scale: float | list[float] = 7.5
    student_guidance_scale: float = 1.0
    timesteps: TimestepSchedule = TimestepSchedule()
    student_timesteps: TimestepSchedule = TimestepSchedule(t_range=(0.0, 1.0))
    student_samples: int = 1
    weighting: Literal["sds", "uniform"] = "sds"
    reduction: Literal["sum", "batch_mean"] = "batch_mean"
    grad_clip: float | None = None

    # Generic settings only: a method's own preset (GECO's) lives in its plugin.
    presets = {
        # Teacher t in [0.02, 0.98], the upper bound dropping to 0.5 after 20% of training;
        # student t on all of [0, T) - ProlificDreamer's schedule (threestudio: 5000 of 25000).
        "drop_max": {
            "guidance_scale": 7.5,
            "student_guidance_scale": 1.0,
            "timesteps": {
                "t_range": (0.02, 0.98),
                "anneal": "drop_max",
                "anneal_t_max": 0.5,
                "anneal_start": 0.2,
            },
            "student_timesteps": {"t_range": (0.0, 1.0)},
        },
        "tiny": {"guidance_scale": 3.0, "student_guidance_scale": 1.0},
    }


class VSD(SDS):
    """Variational Score Distillation with a teacher and an online-trained student prior.

    Args:
        teacher: the pretrained prior (frozen).
        student: a prior that estimates the score of the generator's samples, typically
            :func:`gs_priors.students.lora_student` (ProlificDreamer) or
            :func:`gs_priors.students.copy_student` (GECO) of the teacher. It must
            noise with the same schedule as the teacher.
        config: :class:`VSDConfig`.
    """

    def __init__(
        self, teacher: DiffusionPrior, student: DiffusionPrior, config: VSDConfig | None = None
    ):
        super().__init__(teacher, None)
        self.student = check_prior(student, "student")
        self.config = config if config is not None else VSDConfig()
        if self.student.num_train_timesteps != teacher.num_train_timesteps or not torch.allclose(
            self.student.alphas_cumprod.cpu(), teacher.alphas_cumprod.cpu()
        ):
            raise ValidationError(
                "student", "a prior with the teacher's noise schedule", "a different alphas_cumprod"
            )
        if self.config.student_samples < 1:
            raise ValidationError(
                "VSDConfig.student_samples", "a positive int", repr(self.config.student_samples)
            )

    @property
    def teacher(self) -> DiffusionPrior:
        return self.prior

    def compute(
        self,
        images: torch.Tensor | None = None,
        condition: Conditions | None = None,
        *,
        student_condition: Condition | None = None,
        latents: torch.Tensor | None = None,
        step_ratio: float | None = None,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> ScoreDistillationOutput:
        """The generator term: gradient ``w(t) (eps_pre - eps_stu)`` on the latents.

        ``student_condition`` defaults to ``condition`` (its first entry when several).
        Other arguments as :meth:`SDS.compute`.
        """
        if condition is None:
            raise ValidationError("condition", "a Condition (or a sequence of them)", "None")
        z, t, noise, views = self._prepare(
            images, latents, step_ratio, t, noise, generator, self.config.timesteps
        )
        conds = self._expand_conditions(condition, z.shape[0], views)
        s_cond = self._expand_conditions(
            student_condition if student_condition is not None else conds[0], z.shape[0], views
        )
        with torch.no_grad():
            z_t = add_noise(z.detach().float(), noise, t, self.prior.alphas_cumprod)
            eps_pre = guided_noise(self.prior, z_t, t, conds, self.config.guidance_scale)
            eps_stu = guided_noise(self.student, z_t, t, s_cond, self.config.student_guidance_scale)
        # grad = w (eps_pre - eps_stu): the SDS gradient with eps replaced by eps_stu.
        grad, w = self._grad(z, t, eps_stu, eps_pre)
        loss = surrogate_loss(z, grad, self.config.reduction)
        return ScoreDistillationOutput(loss=loss, grad=grad, latents=z, noise=noise, t=t, w=w)

    def student_loss(
        self,
        latents: torch.Tensor,
        student_condition: Condition,
        *,
        t: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``mean ||student(x_t; y, t) - target||^2`` on detached generator latents (GECO eq. 2).

        Args:
            latents: ``[N, C, h, w]`` generator samples (detached here).
            student_condition: batch 1 or ``N``.
            t, noise: fixed values ``[N * student_samples]`` / matching noise (tests).
        """
        k = self.config.student_samples
        x0 = latents.detach().float().repeat(k, *([1] * (latents.ndim - 1)))
        n = x0.shape[0]
        if t is None:
            t = self.config.student_timesteps.sample(
                n, self.student.num_train_timesteps, None, generator, x0.device
            )
        if noise is None:
            noise = torch.randn(
                x0.shape,
                generator=generator,
                device=generator.device if generator is not None else x0.device,
            )
            noise = noise.to(x0.device, torch.float32)
        cond = student_condition.expand_batch(latents.shape[0])
        if k > 1:
            cond = type(cond).cat([cond] * k)
        x_t = add_noise(x0, noise, t, self.student.alphas_cumprod)
        pred = self.student.model_output(x_t, t, cond).float()
        target = prediction_target(
            x0, noise, t, self.student.alphas_cumprod, self.student.prediction_type
        )
        return F.mse_loss(pred, target)

    def __call__(
        self,
        images: torch.Tensor | None = None,
        condition: Conditions | None = None,
        *,
        student_condition: Condition | None = None,
        generator: torch.Generator | None = None,
        **kwargs,
    ) -> LossTerms:
        """``{"vsd": generator term, "student": student term}`` (see the module docstring)."""
        out = self.compute(
            images, condition, student_condition=student_condition, generator=generator, **kwargs
        )
        s_cond = student_condition
        if s_cond is None:
            s_cond = condition if isinstance(condition, Condition) else list(condition)[0]
        source = images if images is not None else kwargs.get("latents")
        views = source.shape[1] if source is not None and source.ndim == 5 else 1
        s_cond = self._expand_conditions(s_cond, out.latents.shape[0], views)[0]
        return {
            "vsd": out.loss,
            "student": self.student_loss(out.latents, s_cond, generator=generator),
        }

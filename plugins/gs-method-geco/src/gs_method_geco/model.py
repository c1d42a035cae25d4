"""The GECO method: image -> G (one guided U-Net call) -> six views -> LGM -> Gaussians."""

from __future__ import annotations

import json
from typing import Any

import torch

from gs_core.errors import GS3DError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.method import GenerationOutput, Method, timed
from gs_method_geco.adapter import adapter_input, six_view_cameras
from gs_method_geco.config import STAGES, GECOConfig
from gs_method_geco.generator import OneStepGenerator, check_teacher_layout
from gs_nets.splatter_unet import SplatterUNet, SplatterUNetConfig, params_to_gaussians
from gs_priors.zero123plus import Zero123PlusCondition


def _plain(config) -> dict[str, Any]:
    """A diffusers / transformers config as a JSON-able dict of constructor arguments."""
    raw = config.to_diff_dict() if hasattr(config, "to_diff_dict") else dict(config)
    skip = ("transformers_version", "model_type", "architectures")
    out = {k: v for k, v in raw.items() if not k.startswith("_") and k not in skip}
    # Through JSON once, so the config equals its own checkpoint round trip.
    return json.loads(json.dumps(out))


def load_teacher(config: GECOConfig, device="cpu", dtype: torch.dtype = torch.float32):
    """The Zero123++ teacher named by ``config.teacher`` at the generator's view size."""
    from gs_priors.zero123plus import Zero123PlusGuidance

    return Zero123PlusGuidance.from_pretrained(
        config.teacher,
        device=device,
        dtype=dtype,
        version=config.generator.version,
        view_size=config.generator.view_size,
    )


class GECO(Method):
    """GECO (Wang et al. 2024), v1: see :mod:`gs_method_geco`.

    * ``generator``: :class:`~gs_method_geco.generator.OneStepGenerator` (G);
    * ``reconstructor``: :class:`gs_nets.SplatterUNet` (R = LGM) on the six views.
    """

    config_class = GECOConfig
    name = "geco"

    def __init__(self, config: GECOConfig):
        super().__init__(config)
        self.generator = OneStepGenerator(config.generator)
        self.reconstructor = SplatterUNet(config.reconstructor.lgm)
        # Recorded CUDA graphs (not state): kept outside the module's attributes.
        self.__dict__["_graphs"] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_teacher(cls, teacher, config: GECOConfig | None = None) -> GECO:
        """GECO whose G starts as ``teacher`` (a loaded ``Zero123PlusGuidance``); network
        layouts left ``None`` in ``config`` (the ``small`` preset) are the teacher's."""
        config = config if config is not None else GECOConfig.preset("paper")
        gen = config.generator
        updates: dict[str, Any] = {}
        if gen.unet is None:
            updates["unet"] = _plain(teacher.unet.config)
        if gen.vae is None:
            updates["vae"] = _plain(teacher.vae.config)
        if gen.vision_encoder is None:
            updates["vision_encoder"] = _plain(teacher.vision_encoder.config)
        sched = teacher.scheduler_config
        updates.update(
            prompt_tokens=int(teacher.tokenizer.model_max_length),
            view_size=int(teacher.view_size),
            version=teacher.version,
            clip_size=teacher.clip_size,
            clip_mean=tuple(teacher.clip_mean.flatten().tolist()),
            clip_std=tuple(teacher.clip_std.flatten().tolist()),
            reference_size=teacher.reference_size,
            reference_mean=tuple(teacher.reference_mean.flatten().tolist()),
            reference_std=tuple(teacher.reference_std.flatten().tolist()),
            num_train_timesteps=int(sched["num_train_timesteps"]),
            beta_start=float(sched["beta_start"]),
            beta_end=float(sched["beta_end"]),
            beta_schedule=sched["beta_schedule"],
            prediction_type=teacher.prediction_type,
        )
        config = config.model_copy(update={"generator": gen.model_copy(update=updates)})
        config = GECOConfig.model_validate(config.model_dump())
        model = cls(config)
        model.generator.load_teacher(teacher)
        check_teacher_layout(model.generator, teacher)
        return model.to(teacher.device)

    def load_reconstructor_weights(self) -> None:
        """Load ``config.reconstructor.weights`` (LGM's release) into R, when set."""
        weights = self.config.reconstructor.weights
        if weights is None:
            return
        preset = next(
            (
                name
                for name in ("big", "small")
                if SplatterUNetConfig.preset(name) == self.config.reconstructor.lgm
            ),
            None,
        )
        if preset is None:
            raise ValidationError(
                "GECOConfig.reconstructor.weights",
                "null unless reconstructor.lgm is LGM's 'big' or 'small' layout",
                repr(weights),
            )
        lgm = SplatterUNet.from_lgm_checkpoint(weights, preset=preset)
        self.reconstructor.load_state_dict(lgm.state_dict())

    # ------------------------------------------------------------------ pieces
    def lgm_cameras(self, device=None):
        """The six cameras ``[6]`` at LGM's input size (azimuth frame), built once per device
        and setting: a CUDA-graph capture of :meth:`reconstruct_params` must not copy them from
        the host."""
        rc = self.config.reconstructor
        device = torch.device(device if device is not None else self.device)
        key = (str(device), self.config.generator.version, rc.camera_radius, rc.fov_deg,
               rc.lgm.input_size)  # fmt: skip
        cache = self.__dict__.setdefault("_lgm_cameras", {})
        if key not in cache:
            cache[key] = six_view_cameras(*key[1:], device=device)
        return cache[key]

    def views(self, noise: torch.Tensor, condition: Zero123PlusCondition) -> torch.Tensor:
        """G then the VAE decoder: ``noise [B, 4, h, w]`` -> six views ``[B, 6, 3, v, v]``."""
        return self.generator.decode(self.generator(noise, condition))

    def reconstruct_params(self, views: torch.Tensor, cameras=None) -> torch.Tensor:
        """R on six views ``[B, 6, 3, h, w]`` -> activated LGM parameters ``[B, N, 14]``."""
        return self._params_from_input(self._lgm_input(views, cameras))

    def _lgm_input(self, views: torch.Tensor, cameras=None) -> torch.Tensor:
        """LGM's 9-channel input ``[B, 6, 9, s, s]`` in R's dtype (normalised views and rays:
        host constants, so it stays outside CUDA-graph captures)."""
        cams = cameras if cameras is not None else self.lgm_cameras(views.device)
        x = adapter_input(views, cams, self.config.reconstructor.lgm.input_size)
        return x.to(next(self.reconstructor.parameters()).dtype)

    def _params_from_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstructor.gaussian_params(x).float()

    def reconstruct(self, views: torch.Tensor, cameras=None) -> Gaussians:
        return params_to_gaussians(self.reconstruct_params(views, cameras))

    # ------------------------------------------------------------------ inference
    def _graphed(self, key: str, fn):
        if self.device.type != "cuda" or not self.config.cuda_graphs or torch.is_grad_enabled():
            return fn
        graphs = self.__dict__["_graphs"]
        if key not in graphs:
            from gs_core.cuda_graphs import GraphedCallable

            graphs[key] = GraphedCallable(fn, self)
        return graphs[key]

    def compile_parts(self) -> None:
        """Compile the parts ``config.compile`` lists, each once (``nn.Module.compile`` keeps
        the module and its state dict as they are)."""
        done = self.__dict__.setdefault("_compiled_parts", set())
        g = self.generator
        parts = {
            "condition": (g.vision_encoder, g.vae.encoder),
            "unet": (g.unet,),
            "vae": (g.vae.decoder,),
            "lgm": (self.reconstructor,),
        }
        for name in self.config.compile:
            if name not in done:
                for module in parts[name]:
                    module.compile(dynamic=False, backend=self.config.compile_backend)
                done.add(name)

    def _views_from_tensors(self, noise, emb, ref, null_emb, null_ref) -> torch.Tensor:
        cond = Zero123PlusCondition(
            embeddings=emb,
            reference_latents=ref,
            null_embeddings=null_emb,
            null_reference_latents=null_ref,
        )
        return self.views(noise, cond)

    def generate(
        self, images: torch.Tensor, *, seed: int | None = None, **kwargs: Any
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` -> Gaussians ``[B, 6 S^2]`` in the azimuth frame; ``seed`` fixes
        the start noise and the condition's VAE posterior sample. ``extras["views"]``: G's six
        views ``[B, 6, 3, v, v]``."""
        if kwargs:
            raise GS3DError(f"geco.generate: unknown arguments {sorted(kwargs)}")
        images = self.check_images(images).to(self.device)
        self.compile_parts()
        gen = self.seeded_generator(seed)
        timings: dict[str, float] = {}
        dev = self.device
        g, b = self.generator, images.shape[0]
        with timed(timings, "condition", dev):
            # The draws come first, outside the graph (the same values, in the same order, as
            # encode_condition's); CLIP and the VAE encoder then replay as one graph: at batch 1
            # they are launch-bound (1.45 TFLOP; compiled on an H200, 15.9 ms without the graph,
            # 8.4 ms with it).
            draws = g.condition_draws(b, gen)
            noise = g.sample_noise(b, gen)
            x = images.float().contiguous()
            cond = self._graphed("condition", g.condition_tensors)(x, *draws)
        with timed(timings, "generator", dev):
            fn = self._graphed("views", self._views_from_tensors)
            views = fn(noise.contiguous(), *(c.contiguous() for c in cond))
        with timed(timings, "reconstructor", dev):
            x = self._lgm_input(views)
            params = self._graphed("reconstructor", self._params_from_input)(x.contiguous())
        gaussians = params_to_gaussians(params)
        return GenerationOutput(gaussians=gaussians, timings=timings, extras={"views": views})

    # ------------------------------------------------------------------ training
    def training_module(self, stage: str | None = None, **kwargs: Any):
        """The engine's module for ``stage`` in ``vsd | joint`` (see :mod:`gs_method_geco.training`).

        ``data_dir``: a ``gs3d data`` dataset whose input views are the condition images;
        ``teacher``: a loaded teacher (default: ``config.teacher``); ``pseudo_dir`` (or
        ``data_dir`` for ``joint``): the folder of stage II's ``pseudo_ground_truth.safetensors``
        (:mod:`gs_method_geco.pseudo_ground_truth`, written by ``scripts/train_small.py``)."""
        from gs_method_geco.training import JointTrainingModule, VSDTrainingModule

        stage = stage or STAGES[0]
        if stage not in STAGES:
            raise ValidationError("stage", f"one of {', '.join(STAGES)}", repr(stage))
        if stage == "vsd":
            teacher = kwargs.get("teacher") or load_teacher(self.config, self.device)
            if kwargs.get("init_from_teacher", True):
                self.generator.load_teacher(teacher)
                self.load_reconstructor_weights()
            return VSDTrainingModule(self, teacher, data_dir=kwargs.get("data_dir"))
        # `gs3d train --stage joint --data DIR`: DIR holds the pseudo ground truth.
        pseudo_dir = kwargs.get("pseudo_dir") or kwargs.get("data_dir")
        return JointTrainingModule(self, pseudo_dir=pseudo_dir)


__all__ = ["GECO", "load_teacher"]

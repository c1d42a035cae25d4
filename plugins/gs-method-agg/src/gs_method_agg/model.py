"""The AGG method: image -> coarse hybrid generator -> Gaussian super-resolution -> 3D Gaussians.

Objects live in the input camera's azimuth-normalised frame (Sec. 4.1): y up, the input camera
at azimuth 0 (on the +z side, at its own elevation), so :meth:`AGG.generate`'s Gaussians are
seen from the front by ``Cameras.orbit(0, elevation, radius)``.
"""

from __future__ import annotations

from typing import Any

import torch

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians, rgb_to_sh0
from gs_core.method import GenerationOutput, Method, timed
from gs_method_agg.config import STAGES, AGGConfig
from gs_method_agg.generator import CoarseGenerator, GaussianSuperResolution
from gs_method_agg.image_encoder import ImageEncoder


def canonical_gaussians(attrs: dict[str, torch.Tensor], scale: float) -> Gaussians:
    """Predicted ``xyz [B, N, 3]``, ``rgb [B, N, 3]``, ``opacity [B, N, 1]`` -> Gaussians with
    AGG's canonical isotropic ``scale``, identity rotation and SH degree 0 (Sec. 3.1, 4.1)."""
    xyz = attrs["xyz"].float()
    lead = xyz.shape[:-1]
    quats = torch.zeros(*lead, 4, dtype=xyz.dtype, device=xyz.device)
    quats[..., 0] = 1.0
    return Gaussians.unchecked(
        means=xyz,
        quats=quats,
        scales=torch.full((*lead, 3), scale, dtype=xyz.dtype, device=xyz.device),
        opacities=attrs["opacity"].float().squeeze(-1),
        sh=rgb_to_sh0(attrs["rgb"].float()).unsqueeze(-2),
    )


class AGG(Method):
    """Amortized Generative 3D Gaussians (Xu et al. 2024).

    ``forward(rgb [B, 3, H, W])`` -> ``{"coarse": attrs, "fine": attrs | None}`` (attribute dicts,
    see :func:`canonical_gaussians`); :meth:`generate` takes RGBA and returns Gaussians.
    """

    config_class = AGGConfig
    name = "agg"

    def __init__(self, config: AGGConfig):
        super().__init__(config)
        # Released DINOv2 weights load on first use, never here: a checkpoint holds them.
        self.encoder = ImageEncoder(config.encoder)
        self.coarse = CoarseGenerator(config)
        self.sr = GaussianSuperResolution(config) if config.super_resolution else None

    # ------------------------------------------------------------------ inference
    def input_rgb(self, images: torch.Tensor) -> torch.Tensor:
        """RGBA ``[B, 4, H, W]`` composited on the training background -> RGB ``[B, 3, H, W]``."""
        a = images[:, 3:4]
        bg = torch.tensor(self.config.background, dtype=images.dtype, device=images.device)
        return images[:, :3] * a + bg.view(1, 3, 1, 1) * (1 - a)

    def forward(self, rgb: torch.Tensor, with_sr: bool = True) -> dict[str, Any]:
        cls, tokens = self.encoder(rgb)
        coarse = self.coarse(cls, tokens)
        fine = None
        if with_sr and self.sr is not None:
            fine = self.sr(coarse, tokens)
        return {"coarse": coarse, "fine": fine}

    def generate(
        self,
        images: torch.Tensor,
        *,
        seed: int | None = None,
        cuda_graph: bool | None = None,
        **kwargs: Any,
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` in [0, 1] -> one set of Gaussians per image (16,384 at the
        ``paper`` preset, the coarse 4,096 with ``super_resolution=False``).

        AGG is deterministic: ``seed`` is accepted for the Method contract and has no effect.

        ``cuda_graph`` (default: on CUDA) replays each stage as a recorded CUDA graph (see
        :class:`gs_core.cuda_graphs.GraphedCallable`): the same numbers without the per-kernel
        launch cost that dominates at batch 1. The first call per input shape records.
        """
        images = self.check_images(images).to(self.device)
        dev = self.device
        if cuda_graph is None:
            cuda_graph = dev.type == "cuda"
        if cuda_graph and dev.type != "cuda":
            raise ValidationError("cuda_graph", "False (or None) off CUDA", f"True on {dev}")
        encode, coarse_fn, sr_fn = self._graphed_stages() if cuda_graph else self._eager_stages()
        timings: dict[str, float] = {}
        with torch.no_grad():
            rgb = self.input_rgb(images)
            with timed(timings, "encode", dev):
                cls, tokens = encode(rgb)
            with timed(timings, "coarse", dev):
                coarse = coarse_fn(cls, tokens)
            fine = None
            if self.sr is not None:
                with timed(timings, "super_resolution", dev):
                    fine = sr_fn(coarse["xyz"], coarse["rgb"], coarse["opacity"], tokens)
        coarse_g = canonical_gaussians(coarse, self.config.coarse_scale)
        out = coarse_g if fine is None else canonical_gaussians(fine, self.config.fine_scale)
        out.validate(check_values=True)
        timings["total"] = sum(timings.values())
        return GenerationOutput(gaussians=out, timings=timings, extras={"coarse": coarse_g})

    def _sr_call(self, xyz, rgb, opacity, tokens):
        return self.sr({"xyz": xyz, "rgb": rgb, "opacity": opacity}, tokens)

    def _eager_stages(self):
        return self.encoder, self.coarse, self._sr_call

    def _graphed_stages(self):
        from gs_core.cuda_graphs import GraphedCallable

        graphs = self.__dict__.get("_cuda_graphs")
        if graphs is None:
            graphs = (
                GraphedCallable(self.encoder, self.encoder),
                GraphedCallable(self.coarse, self.coarse),
                GraphedCallable(self._sr_call, self.sr),
            )
            # Kept out of nn.Module's registries: no parameters, not part of the state.
            self.__dict__["_cuda_graphs"] = graphs
        return graphs

    # ------------------------------------------------------------------ training
    def training_module(self, stage: str | None = None, **kwargs: Any):
        """The engine's module for ``stage`` in ``warmup | coarse | sr`` (see
        :mod:`gs_method_agg.training`); ``data_dir`` is a ``gs3d data procedural`` dataset;
        ``resident`` a :class:`gs_core.data.resident.ResidentViews` of it, shared by stages
        trained in one process (with ``resident_data``)."""
        from gs_method_agg.training import AGGTrainingModule

        self.encoder.ensure_weights()
        return AGGTrainingModule(
            self,
            stage or "coarse",
            data_dir=kwargs.get("data_dir"),
            resident=kwargs.get("resident"),
        )

    # ------------------------------------------------------------------ weights
    def save_pretrained(
        self,
        directory,
        overwrite: bool = False,
        max_shard_bytes: int | None = None,
        int8: bool = False,
    ):
        # A checkpoint must never hold a random stand-in for the pretrained encoder.
        self.encoder.ensure_weights()
        return super().save_pretrained(
            directory, overwrite=overwrite, max_shard_bytes=max_shard_bytes, int8=int8
        )


__all__ = ["AGG", "STAGES", "canonical_gaussians"]

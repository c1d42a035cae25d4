"""The Compress3D method: image -> image embedding -> prior shape embedding -> triplane latent
diffusion (dual guidance) -> decoder -> FlexiCubes mesh with vertex colours -> mesh + Gaussians.

Sub-models (each its own module, trained in its own stage): ``autoencoder`` (Sec. 3.1),
``prior`` (Sec. 3.2), ``unet`` (Sec. 3.3), and, for ``embeddings.kind='procedural'``, the
``encoders`` trained here; the paper's OpenCLIP / OpenShape encoders are external weights loaded
on first use (see :mod:`gs_method_compress3d.paper_embedders`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians, rgb_to_sh0
from gs_core.meshing.sampling import mesh_to_gaussians
from gs_core.method import GenerationOutput, Method, timed
from gs_method_compress3d.autoencoder import TriplaneAutoencoder
from gs_method_compress3d.config import STAGES, Compress3DConfig
from gs_method_compress3d.guidance import dual_guidance, guidance_drop_masks
from gs_method_compress3d.noise_schedule import NoiseSchedule, ddim_timesteps
from gs_method_compress3d.prior import EmbeddingPrior
from gs_method_compress3d.procedural_encoders import ProceduralContrastiveEncoders
from gs_method_compress3d.triplane_unet import TriplaneUNet


class Compress3D(Method):
    config_class = Compress3DConfig
    name = "compress3d"

    def __init__(self, config: Compress3DConfig):
        super().__init__(config)
        emb = config.embeddings
        self.autoencoder = TriplaneAutoencoder(config)
        self.prior = EmbeddingPrior(emb.dim, config.prior)
        self.unet = TriplaneUNet(config.encoder.latent_channels, emb.dim, config.unet)
        self.schedule = NoiseSchedule(config.unet.steps, config.unet.beta_schedule)
        self.encoders = ProceduralContrastiveEncoders(emb) if emb.kind == "procedural" else None

    # ------------------------------------------------------------------ embeddings
    def set_external_encoders(
        self, image: nn.Module | None = None, shape: nn.Module | None = None
    ) -> None:
        """Use these OpenCLIP / OpenShape modules (``embeddings.kind='openshape'``) instead of
        loading the configured weights; kept out of the state dict (they are not ours)."""
        ext = self.__dict__.setdefault("_external_encoders", {})
        if image is not None:
            ext["image"] = image
        if shape is not None:
            ext["shape"] = shape

    def _external(self, which: str) -> nn.Module:
        from gs_method_compress3d import paper_embedders

        ext = self.__dict__.setdefault("_external_encoders", {})
        if which not in ext:
            load = (
                paper_embedders.load_image_encoder
                if which == "image"
                else paper_embedders.load_shape_encoder
            )
            ext[which] = load(self.config.embeddings, device=self.device)
        return ext[which]

    @staticmethod
    def input_rgb(images: torch.Tensor) -> torch.Tensor:
        """RGBA ``[B, 4, H, W]`` -> RGB on white ``[B, 3, H, W]`` (the renders' background)."""
        a = images[:, 3:4]
        return images[:, :3] * a + (1.0 - a)

    def image_embedding(self, rgb: torch.Tensor) -> torch.Tensor:
        """``rgb [B, 3, H, W]`` -> scaled ``e_p [B, D]`` (Sec. 4.2: times 0.85 for OpenCLIP)."""
        emb = self.config.embeddings
        if self.encoders is not None:
            e = self.encoders.image(rgb)
        else:
            from gs_method_compress3d.paper_embedders import clip_image_embedding

            e = clip_image_embedding(self._external("image"), rgb)
        return e.float() * emb.image_scale

    def shape_embedding(self, xyz: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        """Coloured clouds ``[B, N, 3]`` each -> scaled ``e_s [B, D]`` (times 0.25 for OpenShape)."""
        emb = self.config.embeddings
        if self.encoders is not None:
            n = min(emb.shape_points, xyz.shape[1])
            e = self.encoders.shape(xyz[:, :n], rgb[:, :n])
        else:
            from gs_method_compress3d.paper_embedders import openshape_embedding

            e = openshape_embedding(self._external("shape"), xyz, rgb)
        return e.float() * emb.shape_scale

    # ------------------------------------------------------------------ sampling
    def unet_guided(
        self,
        z: torch.Tensor,
        t: int,
        context3: torch.Tensor,
        guidance: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """Eq. 15 with the three branches in one forward (``context3`` from :meth:`guided_context`);
        ``guidance = (s_s, s_p)``, default ``config.unet``'s."""
        tt = torch.full((3 * z.shape[0],), t, device=z.device, dtype=torch.long)
        return self._combine(self._branch_eps(z, tt, context3), guidance)

    def _branch_eps(
        self, z: torch.Tensor, tt: torch.Tensor, context3: torch.Tensor
    ) -> torch.Tensor:
        """The unconditional, image-only and full branches' noise, ``[3B, ...]`` in that order."""
        return self.unet(z.repeat(3, 1, 1, 1, 1), tt, context3)

    def _combine(self, eps3: torch.Tensor, guidance: tuple[float, float] | None) -> torch.Tensor:
        u = self.config.unet
        s_s, s_p = (u.guidance_shape, u.guidance_image) if guidance is None else guidance
        uncond, image_only, full = eps3.chunk(3)
        return dual_guidance(uncond, image_only, full, s_s, s_p)

    def _denoisers(self, cuda_graph: bool):
        """The prior and three-branch UNet denoisers, replayed from CUDA graphs when asked (the
        sampling loops launch hundreds of small kernels per step at batch 1). Eq. 15's
        combination stays outside the graph, so the guidance scales are read at every call."""
        if not cuda_graph:
            return self.prior, self._branch_eps
        from gs_core.cuda_graphs import GraphedCallable

        graphs = self.__dict__.get("_cuda_graphs")
        if graphs is None:
            graphs = (
                GraphedCallable(self.prior, self.prior),
                GraphedCallable(self._branch_eps, self.unet),
            )
            # kept out of nn.Module's registries: no parameters, not part of the state
            self.__dict__["_cuda_graphs"] = graphs
        return graphs

    def _dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def guided_context(self, shape_emb: torch.Tensor, image_emb: torch.Tensor) -> torch.Tensor:
        b = image_emb.shape[0]
        drop_s, drop_i = guidance_drop_masks(b, image_emb.device)
        return self.unet.context(shape_emb.repeat(3, 1), image_emb.repeat(3, 1), drop_s, drop_i)

    @torch.no_grad()
    def sample_latents(
        self,
        shape_emb: torch.Tensor,
        image_emb: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        fn=None,
        guidance: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """DDIM (eta 0) from noise to latents ``[B, 3, c', r', r']`` (unscaled); ``fn(z, t [3B],
        context3)`` gives the three branches' noise (default: eager), combined by Eq. 15 with
        ``guidance = (s_s, s_p)`` (default ``config.unet``'s)."""
        fn = fn or self._branch_eps
        enc = self.config.encoder
        r = enc.latent_resolution
        b = image_emb.shape[0]
        z = torch.randn(
            (b, 3, enc.latent_channels, r, r), generator=generator, device=image_emb.device
        ).to(image_emb.dtype)
        ctx = self.guided_context(shape_emb, image_emb)
        ts = ddim_timesteps(self.config.unet.steps, steps or self.config.unet.sample_steps)
        for i, t in enumerate(ts):
            tt = torch.full((3 * b,), t, device=z.device, dtype=torch.long)
            eps = self._combine(fn(z, tt, ctx), guidance)
            z = self.schedule.ddim_step(z, t, ts[i + 1] if i + 1 < len(ts) else -1, eps=eps)
        return z / self.config.unet.latent_scale

    def generate(
        self, images: torch.Tensor, *, seed: int | None = None, **kwargs: Any
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` -> one coloured mesh per image (``meshes``) and
        ``gaussians_per_mesh`` flat Gaussians sampled on it (``gaussians [B, N]``).

        Keyword arguments: ``use_prior`` (default ``config.unet.use_prior``; ``False`` conditions
        on the image alone, Table 4's "w/o prior"), ``steps`` (DDIM steps), ``guidance``
        (``(s_s, s_p)`` of Eq. 15, default ``config.unet``'s; Table 5 sweeps it), ``cuda_graph``
        (default: on CUDA; replays the prior and the UNet's three branches from CUDA graphs).
        """
        images = self.check_images(images).to(self.device)
        allowed = {"use_prior", "steps", "cuda_graph", "guidance"}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValidationError(
                "generate()",
                "keyword arguments use_prior, steps, guidance, cuda_graph",
                str(sorted(unknown)),
            )
        guidance = kwargs.get("guidance")
        if guidance is not None:
            try:
                guidance = tuple(float(v) for v in guidance)
            except (TypeError, ValueError):
                guidance = None
            if guidance is None or len(guidance) != 2:
                raise ValidationError(
                    "guidance", "two numbers (s_s, s_p)", repr(kwargs.get("guidance"))
                )
        dev = self.device
        cuda_graph = kwargs.get("cuda_graph")
        cuda_graph = dev.type == "cuda" if cuda_graph is None else bool(cuda_graph)
        if cuda_graph and dev.type != "cuda":
            raise ValidationError("cuda_graph", "False (or None) off CUDA", f"True on {dev}")
        prior_fn, unet_fn = self._denoisers(cuda_graph)
        use_prior = kwargs.get("use_prior", self.config.unet.use_prior)
        gen = self.seeded_generator(seed)
        timings: dict[str, float] = {}
        with torch.no_grad():
            with timed(timings, "image_embedding", dev):
                # In the networks' dtype: a model cast to bf16 / fp16 samples in it.
                e_p = self.image_embedding(self.input_rgb(images)).to(self._dtype())
            with timed(timings, "prior", dev):
                # Without the prior the shape branch is always the learned null embedding.
                if use_prior:
                    e_s = self.prior.sample(e_p, generator=gen, fn=prior_fn)
                else:
                    e_s = self.unet.null_shape.to(e_p).expand_as(e_p)
            with timed(timings, "unet", dev):
                z = self.sample_latents(
                    e_s,
                    e_p,
                    generator=gen,
                    steps=kwargs.get("steps"),
                    fn=unet_fn,
                    guidance=guidance,
                )
            with timed(timings, "decode", dev):
                planes = self.autoencoder.decode(z)
            with timed(timings, "flexicubes", dev):
                shapes = self.autoencoder.extract(planes, training=False)
            if self.config.decoder.texture_size is not None:
                with timed(timings, "texture", dev):
                    shapes = [self._textured(s, planes[b]) for b, s in enumerate(shapes)]
            with timed(timings, "gaussians", dev):
                meshes = [s.mesh for s in shapes]
                gs = [self._gaussians_on(s, gen) for s in shapes]
                gaussians = Gaussians(
                    means=torch.stack([g.means for g in gs]),
                    quats=torch.stack([g.quats for g in gs]),
                    scales=torch.stack([g.scales for g in gs]),
                    opacities=torch.stack([g.opacities for g in gs]),
                    sh=torch.stack([g.sh for g in gs]),
                )
        timings["total"] = sum(timings.values())
        return GenerationOutput(
            gaussians=gaussians,
            meshes=meshes,
            timings=timings,
            extras={"image_embedding": e_p, "shape_embedding": e_s, "latent": z},
        )

    def _textured(self, shape, planes: torch.Tensor):
        """``shape`` with its mesh UV-unwrapped and the colour head baked into a texture of
        ``decoder.texture_size`` (the head at each texel's surface point)."""
        from gs_core.meshing import bake_surface_colors, unwrap_uv

        fn = shape.surface_color or functools.partial(self.autoencoder.surface_colors, planes)
        size = self.config.decoder.texture_size
        mesh = bake_surface_colors(unwrap_uv(shape.mesh), fn, size=size)
        return dataclasses.replace(shape, mesh=mesh)

    def _gaussians_on(self, shape, generator) -> Gaussians:
        """Gaussians sampled on ``shape``'s mesh; with ``decoder.color_query="surface_points"``
        their colours are the colour MLP at their centres (the paper's surface-point colours),
        not the vertex colours interpolated."""
        g = mesh_to_gaussians(shape.mesh, self.config.gaussians_per_mesh, generator=generator)
        if shape.surface_color is None:
            return g
        sh = g.sh.clone()
        sh[:, 0] = rgb_to_sh0(shape.surface_color(g.means).to(sh.dtype))
        return Gaussians(
            means=g.means, quats=g.quats, scales=g.scales, opacities=g.opacities, sh=sh
        )

    # ------------------------------------------------------------------ training

    def training_module(self, stage: str | None = None, **kwargs: Any):
        """The engine's module for ``stage`` in ``encoders | autoencoder | prior | diffusion``
        (see :mod:`gs_method_compress3d.training`); ``data_dir`` is a ``gs3d data procedural``
        dataset."""
        from gs_method_compress3d.training import Compress3DTrainingModule

        stage = stage or STAGES[0]
        if stage not in STAGES:
            raise ValidationError("stage", f"one of {', '.join(STAGES)}", repr(stage))
        return Compress3DTrainingModule(self, stage, data_dir=kwargs.get("data_dir"))


__all__ = ["Compress3D"]

"""The DD3G method: image + random cameras ``C`` + fresh noise ``N`` -> PEPD -> 3D Gaussians
(Sec. III-B, III-E, Eq. 2).

Objects live in the azimuth-normalised frame of the teacher's views (y up, the input image at
azimuth 0), so the Gaussians of :meth:`DD3G.generate` are seen from the front by
``Cameras.orbit(0, 0, radius)``. Which ``C`` and ``N`` a call uses comes from its ``seed``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gs_core.errors import ValidationError
from gs_core.gaussians import Gaussians, rgb_to_sh0
from gs_core.method import GenerationOutput, Method, timed
from gs_encoders.image_tokens import ImageTokenEncoder
from gs_method_dd3g.cameras import orbit_views, plucker_inputs, random_view_sets
from gs_method_dd3g.config import DD3GConfig
from gs_method_dd3g.pattern_extraction import PatternExtraction
from gs_method_dd3g.progressive_decoding import ProgressiveDecoding

# What a generator returns for its Gaussians (``sh_rest`` from Splatter Image's head alone).
GAUSSIAN_ATTRIBUTES = ("position", "log_scale", "rotation", "color", "opacity", "sh_rest")


def gaussians_from_attributes(attrs: dict[str, torch.Tensor]) -> Gaussians:
    """A generator's activated attributes (``[B, N, .]``) -> :class:`Gaussians` ``[B]``: SH
    degree 0, or 1 where they hold band-1 coefficients ``sh_rest [B, N, 3, 3]`` (Splatter
    Image's head)."""
    sh = rgb_to_sh0(attrs["color"].float()).unsqueeze(-2)
    if "sh_rest" in attrs:
        sh = torch.cat([sh, attrs["sh_rest"].float()], dim=-2)
    return Gaussians.unchecked(
        means=attrs["position"].float(),
        quats=attrs["rotation"].float(),
        scales=torch.exp(attrs["log_scale"].float()),
        opacities=attrs["opacity"].float(),
        sh=sh,
    )


class PEPD(nn.Module):
    """The generator ``G_theta`` without its image encoder: ``forward(image_tokens [B, M, De],
    noise [B, V, Cl, s, s], rays [B, V, 6, s, s])`` -> PD's attributes. With
    ``generator="pd"`` the noise and rays are ignored (Table II (c))."""

    def __init__(self, config: DD3GConfig, context_dim: int):
        super().__init__()
        d = config.decoder.dim
        self.image_proj = nn.Sequential(nn.LayerNorm(context_dim), nn.Linear(context_dim, d))
        self.pattern = (
            PatternExtraction(config.pattern, config.latent_channels, context_dim, d)
            if config.generator == "pepd"
            else None
        )
        self.decoder = ProgressiveDecoding(config.decoder, config.num_tokens())

    def tokens(self, image_tokens, noise, rays) -> torch.Tensor:
        """``II ⊕ p1(II, N, C)``: the PD input ``[B, T, dim]``."""
        x = self.image_proj(image_tokens)
        if self.pattern is not None:
            x = torch.cat([x, self.pattern(noise, rays, image_tokens)], dim=1)
        return x

    def forward(self, image_tokens, noise, rays) -> dict[str, torch.Tensor]:
        return self.decoder(self.tokens(image_tokens, noise, rays))


class DD3G(Method):
    """DD3G's student (Qin et al. 2025). ``forward(rgb, noise, cameras)`` -> attributes;
    :meth:`generate` draws ``C`` and ``N`` from its seed."""

    config_class = DD3GConfig
    name = "dd3g"

    def __init__(self, config: DD3GConfig):
        super().__init__(config)
        if config.generator == "splatter":  # Table II (b): the image goes to the network
            from gs_method_dd3g.splatter_baseline import ImageAsInput, SplatterBaseline

            self.encoder = ImageAsInput()
            self.generator = SplatterBaseline(config)
        elif config.generator == "hybrid":  # Table II (a): points + triplane from the tokens
            from gs_method_dd3g.hybrid_baseline import HybridBaseline

            self.encoder = ImageTokenEncoder(config.encoder)
            self.generator = HybridBaseline(config, self.encoder.dim)
        else:
            self.encoder = ImageTokenEncoder(config.encoder)
            self.generator = PEPD(config, self.encoder.dim)

    # ------------------------------------------------------------------ pieces
    def input_rgb(self, images: torch.Tensor) -> torch.Tensor:
        """RGBA ``[B, 4, H, W]`` composited on white (the teacher's input background)."""
        a = images[:, 3:4]
        return images[:, :3] * a + (1 - a)

    def noise_shape(self, batch: int) -> tuple[int, ...]:
        c = self.config
        return (batch, c.num_views, c.latent_channels, c.latent_size, c.latent_size)

    def sample_inputs(
        self, batch: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random ``C`` (azimuths, elevations ``[B, V]``) and fresh noise ``N``."""
        c = self.config
        az, el = random_view_sets(
            batch, c.num_views, c.view_elevation_range, generator, self.device
        )
        src = generator.device if generator is not None else self.device
        noise = torch.randn(self.noise_shape(batch), generator=generator, device=src)
        return az, el, noise.to(self.device)

    def view_cameras(self, azimuths: torch.Tensor, elevations: torch.Tensor, resolution=None):
        """Cameras ``[B, V]`` on the model's device at ``resolution`` (default: the render's)
        from angles ``[B, V]`` in degrees (host angles build them without a synchronisation)."""
        c = self.config
        return orbit_views(
            azimuths,
            elevations,
            c.camera_radius,
            c.fov_deg,
            resolution or c.render_resolution,
            device=self.device,
        )

    def forward(
        self, rgb: torch.Tensor, noise: torch.Tensor, rays: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``rgb [B, 3, H, W]``, ``noise [B, V, Cl, s, s]``, ``rays [B, V, 6, s, s]`` -> PD's
        activated attributes (``position``, ``log_scale``, ``rotation``, ``color``,
        ``opacity``, ``levels``)."""
        if noise.shape[1:] != self.noise_shape(1)[1:]:
            raise ValidationError(
                "noise",
                f"[B, {', '.join(map(str, self.noise_shape(1)[1:]))}]",
                str(tuple(noise.shape)),
            )
        return self.generator(self.encoder(rgb), noise, rays)

    # ------------------------------------------------------------------ inference
    def generate(
        self,
        images: torch.Tensor,
        *,
        seed: int | None = None,
        cuda_graph: bool | None = None,
        noise: torch.Tensor | None = None,
        azimuths: torch.Tensor | None = None,
        elevations: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` in [0, 1] -> one set of Gaussians per image (157,184 at the
        ``paper`` preset). ``C`` and ``N`` come from ``seed`` unless given (``noise``
        ``[B, V, Cl, s, s]``, ``azimuths`` / ``elevations`` ``[B, V]`` degrees).

        ``cuda_graph`` (default: on CUDA) replays the encoder and PEPD as CUDA graphs (their
        shapes are static per batch size): the first call per shape records.
        """
        images = self.check_images(images).to(self.device)
        dev = self.device
        b = images.shape[0]
        if cuda_graph is None:
            cuda_graph = dev.type == "cuda"
        if cuda_graph and dev.type != "cuda":
            raise ValidationError("cuda_graph", "False (or None) off CUDA", f"True on {dev}")
        gen = self.seeded_generator(seed)
        az, el, fresh = self.sample_inputs(b, gen)
        az = az if azimuths is None else azimuths.to(dev).float()
        el = el if elevations is None else elevations.to(dev).float()
        # A model cast to bf16 / fp16 takes its inputs in its own dtype; cameras are built in
        # float32 (angles) and cast after, and the Gaussians come back in float32.
        dtype = next(self.generator.parameters()).dtype
        noise = (fresh if noise is None else noise.to(dev)).to(dtype)
        encode, pepd = self._graphed() if cuda_graph else (self.encoder, self.generator)
        timings: dict[str, float] = {}
        with torch.no_grad():
            rays = plucker_inputs(self.view_cameras(az, el), self.config.latent_size).to(dtype)
            with timed(timings, "encode", dev):
                tokens = encode(self.input_rgb(images).to(dtype))
            with timed(timings, "pepd", dev):
                attrs = pepd(tokens, noise, rays)
        attrs = {
            k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v
            for k, v in attrs.items()
        }
        g = gaussians_from_attributes(attrs)
        g.validate(check_values=True)
        timings["total"] = sum(timings.values())
        return GenerationOutput(
            gaussians=g,
            timings=timings,
            extras={"azimuths": az, "elevations": el, "noise": noise},
        )

    def _graphed(self):
        from gs_core.cuda_graphs import GraphedCallable

        graphs = self.__dict__.get("_cuda_graphs")
        if graphs is None:
            # An encoder without parameters (the splatter baseline's ImageAsInput hands the
            # image on) launches no kernel: its graph would be empty, and CUDA warns of that.
            computes = any(True for _ in self.encoder.parameters())
            graphs = (
                GraphedCallable(self.encoder, self.encoder) if computes else self.encoder,
                GraphedCallable(self._pepd_tensors, self.generator),
            )
            self.__dict__["_cuda_graphs"] = graphs
        encode, pepd = graphs

        def run(tokens, noise, rays):
            tensors = pepd(tokens, noise, rays)
            return dict(zip(self.__dict__["_attribute_names"], tensors, strict=True))

        return encode, run

    def _pepd_tensors(self, tokens, noise, rays):
        # The Gaussians' attributes alone (PD's `levels` are for inspection), named from the
        # call that recorded the graph.
        out = self.generator(tokens, noise, rays)
        names = tuple(k for k in GAUSSIAN_ATTRIBUTES if k in out)
        self.__dict__["_attribute_names"] = names
        return tuple(out[k] for k in names)

    # ------------------------------------------------------------------ training
    def training_module(self, stage: str | None = None, **kwargs: Any):
        """The distillation module (:mod:`gs_method_dd3g.training`): ``quadruples`` (a
        :class:`~gs_method_dd3g.quadruples.QuadrupleSet` or its directory) and ``teacher``
        (an ``ImageDreamGuidance`` or its checkpoint directory; the verifier of L_IV)."""
        from gs_method_dd3g.training import DD3GTrainingModule

        self.encoder.ensure_weights()
        return DD3GTrainingModule(
            self,
            quadruples=kwargs.get("quadruples") or kwargs.get("data_dir"),
            teacher=kwargs.get("teacher"),
        )

    def save_pretrained(
        self, directory, overwrite: bool = False, max_shard_bytes: int | None = None
    ):
        # A checkpoint must never hold a random stand-in for the released encoder.
        self.encoder.ensure_weights()
        return super().save_pretrained(
            directory, overwrite=overwrite, max_shard_bytes=max_shard_bytes
        )


__all__ = ["DD3G", "PEPD", "gaussians_from_attributes"]

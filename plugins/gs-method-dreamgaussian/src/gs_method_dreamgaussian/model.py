"""The ``dreamgaussian`` method: per-object optimisation, no weights of its own.

``DreamGaussian(config).generate(rgba)`` runs, for each input image, stage 1 (Gaussians by
Zero123 SDS with densification) and, unless ``stage2.enabled`` is off, stage 2 (mesh
extraction, UV baking, texture refinement). The Zero123 prior named by ``config.prior`` is
loaded on first use (never when the method is built or loaded), so a "checkpoint" of this
method is its config alone.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
import torch.nn.functional as F

from gs_core.errors import GS3DError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.image_inputs import OBJECT_ALPHA, object_box, recenter
from gs_core.method import GenerationOutput, Method, timed
from gs_method_dreamgaussian.config import CameraConfig, DreamGaussianConfig
from gs_method_dreamgaussian.profiling import Profile
from gs_method_dreamgaussian.stage1 import InputView, run_stage1

# The optional `mesh` extra that stage 2 runs on (gs3d-core[mesh]).
MESH_MODULES = {
    "mcubes": "PyMCubes",
    "fast_simplification": "fast-simplification",
    "xatlas": "xatlas",
}


def prepare_input(rgba: torch.Tensor, cfg: CameraConfig, index: int = 0) -> InputView:
    """One RGBA image ``[4, H, W]`` as the optimisation's input view: recentred to
    ``recenter_fill`` (process.py), resized to ``reference_size`` and composited on white
    (main.py's ``load_input``).

    Raises:
        ValidationError: naming ``images[index]`` when no pixel has alpha >= 0.5.
    """
    if object_box(rgba[3].detach().cpu()) is None:
        raise ValidationError(
            f"images[{index}]",
            f"an object (alpha >= {OBJECT_ALPHA} somewhere)",
            "a fully transparent image",
        )
    if cfg.recenter_fill is not None:
        rgba = recenter(rgba[None], cfg.recenter_fill)[0]
    size = cfg.reference_size
    x = F.interpolate(rgba[None].float(), (size, size), mode="bilinear", antialias=True)
    x = x.clamp(0, 1)
    alpha = x[:, 3:]
    return InputView(rgb=x[:, :3] * alpha + (1 - alpha), alpha=alpha)


def _check_values(images: torch.Tensor) -> None:
    with torch.no_grad():
        finite = bool(torch.isfinite(images).all())
        lo, hi = (float(images.min()), float(images.max())) if finite else (0.0, 0.0)
    if not finite:
        raise ValidationError("images", "finite values in [0, 1]", "NaN/Inf entries")
    if lo < 0.0 or hi > 1.0:
        raise ValidationError("images", "values in [0, 1]", f"range [{lo:.3g}, {hi:.3g}]")


def _require_mesh_extra() -> None:
    missing = [pkg for mod, pkg in MESH_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise GS3DError(
            f"dreamgaussian stage 2 (mesh and texture) needs {', '.join(missing)}: pip install "
            "'gs-method-dreamgaussian[mesh]' (or stage2.enabled=false for Gaussians only)"
        )


def _stack(sets: list[Gaussians]) -> Gaussians:
    """One ``[B, N]`` set from per-image sets of different sizes: the smaller ones are padded
    with transparent Gaussians (opacity 0) at the origin, which render as nothing."""
    n = max(g.num_gaussians for g in sets)
    padded = []
    for g in sets:
        k = n - g.num_gaussians
        if k:
            pad = Gaussians.from_colors(
                means=g.means.new_zeros(k, 3),
                colors=g.means.new_zeros(k, 3),
                scales=1e-6,
                opacities=0.0,
            )
            g = Gaussians.concat([g, pad])
        padded.append(g)
    return Gaussians(
        means=torch.stack([g.means for g in padded]),
        quats=torch.stack([g.quats for g in padded]),
        scales=torch.stack([g.scales for g in padded]),
        opacities=torch.stack([g.opacities for g in padded]),
        sh=torch.stack([g.sh for g in padded]),
    )


class DreamGaussian(Method):
    """DreamGaussian image-to-3D (see :mod:`gs_method_dreamgaussian`)."""

    config_class = DreamGaussianConfig
    name = "dreamgaussian"

    def __init__(self, config: DreamGaussianConfig):
        super().__init__(config)
        # Follows .to(device), so generate() knows where to run; not part of the state.
        self.register_buffer("_device_anchor", torch.zeros(()), persistent=False)

    def generate(
        self,
        images: torch.Tensor,
        *,
        seed: int | None = None,
        profile: bool = False,
        **kwargs: Any,
    ) -> GenerationOutput:
        """RGBA ``[B, 4, H, W]`` in [0, 1] -> Gaussians ``[B, N]`` and one textured mesh per
        image (``meshes``; none when ``stage2.enabled`` is off).

        Each image is optimised on its own; sets of different sizes are padded to the largest
        with transparent Gaussians. ``seed`` seeds every random draw (initial Gaussians,
        cameras, backgrounds, noise, splits); the global generator is left as it was.
        ``profile=True`` adds ``extras["profile"]``: seconds per section of each stage (CUDA
        synchronised, which slows the run).

        ``timings``: ``prior_load`` (first use of a prior in the process), ``stage1``,
        ``mesh`` (extraction, UV atlas, baking), ``stage2`` (texture refinement), ``total``.
        ``extras``: ``seed``, ``counts`` (Gaussians after every stage-1 step, per image),
        ``densified`` (duplicated / split / pruned), ``final_pruned``, ``baked_textures``
        (the textures before refinement).
        """
        images = self.check_images(images)
        _check_values(images)
        cfg = self.config
        if cfg.stage2.enabled:
            _require_mesh_extra()
        dev = self.device
        images = images.to(dev)
        views = [prepare_input(img, cfg.camera, i) for i, img in enumerate(images)]
        if seed is None:
            seed = torch.Generator().seed()
        timings: dict[str, float] = {}
        extras: dict[str, Any] = {
            "seed": int(seed),
            "counts": [],
            "densified": [],
            "final_pruned": [],
            "baked_textures": [],
        }
        if profile:
            extras["profile"] = []
        sets: list[Gaussians] = []
        meshes = []
        forked = [dev] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=forked), torch.enable_grad():
            torch.manual_seed(int(seed))
            guidance = self._guidance(timings)
            for view in views:
                prof = Profile(profile, dev)
                reference = None
                if guidance is not None:
                    from gs_method_dreamgaussian.guidance import encode_input

                    reference = encode_input(guidance.prior, view.rgb, cfg.prior)
                with timed(timings, "stage1", dev):
                    s1 = run_stage1(cfg, view, guidance=guidance, reference=reference, profile=prof)
                sets.append(s1.gaussians)
                extras["counts"].append(s1.counts)
                extras["densified"].append(s1.densified)
                extras["final_pruned"].append(s1.final_pruned)
                if cfg.stage2.enabled:
                    from gs_method_dreamgaussian.stage2 import extract_mesh, refine_texture

                    with timed(timings, "mesh", dev):
                        mesh = extract_mesh(cfg, s1.gaussians, prof)
                    extras["baked_textures"].append(mesh.texture)
                    with timed(timings, "stage2", dev):
                        mesh = refine_texture(
                            cfg, mesh, view, guidance=guidance, reference=reference, profile=prof
                        )
                    meshes.append(mesh)
                if profile:
                    extras["profile"].append(prof.sections)
        timings["total"] = sum(timings.values())
        return GenerationOutput(
            gaussians=_stack(sets), meshes=meshes or None, timings=timings, extras=extras
        )

    def _guidance(self, timings: dict[str, float]):
        """The loaded prior when a stage needs it, else ``None``."""
        cfg = self.config
        needed = cfg.stage1.sds or (cfg.stage2.enabled and cfg.stage2.lambda_refine > 0)
        if not needed:
            return None
        from gs_method_dreamgaussian.guidance import load_prior

        with timed(timings, "prior_load", self.device):
            return load_prior(cfg.prior, self.device)

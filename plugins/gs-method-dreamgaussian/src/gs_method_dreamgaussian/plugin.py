"""gs3d plugin hooks: registers the ``dreamgaussian`` method (per-object optimisation, no weights
of its own; it needs a Zero123 prior checkpoint, named by its config)."""

from __future__ import annotations

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec
from gs_method_dreamgaussian.config import DreamGaussianConfig


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="dreamgaussian",
            summary="DreamGaussian: Zero123 score distillation into densified Gaussians, then "
            "mesh extraction and UV texture refinement (per-object optimisation).",
            config_class=DreamGaussianConfig,
            method_class="gs_method_dreamgaussian.model:DreamGaussian",
            core_api="1.1",
            paper="Tang et al., DreamGaussian: Generative Gaussian Splatting for Efficient 3D "
            "Content Creation, ICLR 2024 (arXiv:2309.16653)",
            # The input camera sits at azimuth 0 and at the configured input elevation, y up:
            # gs3d's azimuth-normalised frame.
            output_frame="azimuth",
            has_weights=False,
        )
    )

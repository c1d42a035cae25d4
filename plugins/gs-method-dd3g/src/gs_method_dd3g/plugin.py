"""gs3d plugin hooks: registers the ``dd3g`` method (a feed-forward generator trained by
distillation; no bundled weights yet)."""

from __future__ import annotations

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec
from gs_method_dd3g.config import DD3GConfig


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="dd3g",
            summary="DD3G: the PEPD generator (pattern extraction + progressive decoding) "
            "distilled from ImageDream's probability-flow ODE with implicit verification.",
            config_class=DD3GConfig,
            method_class="gs_method_dd3g.model:DD3G",
            core_api="1.1",
            paper="Qin et al., Distilling Multi-view Diffusion Models into 3D Generators "
            "(DD3G), IEEE Transactions on Multimedia (2025)",
            # The teacher's views are relative to the input image (azimuth 0 at the input),
            # so the generated Gaussians live in the azimuth-normalised frame.
            output_frame="azimuth",
            has_weights=True,
        )
    )

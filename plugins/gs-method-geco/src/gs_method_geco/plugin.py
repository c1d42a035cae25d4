"""gs3d plugin hooks: registers the ``geco`` method (a one-step Zero123++ generator distilled by
VSD, then fine-tuned jointly with an LGM reconstructor)."""

from __future__ import annotations

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec, StageSpec
from gs_method_geco.config import GECOConfig

# GECO's two distillation stages (Sec. 3.1, 3.2), names as config.STAGES.
STAGE_SPECS = (
    StageSpec(
        "vsd",
        "stage I: the one-step generator (initialised from the Zero123++ teacher) against a "
        "full-U-Net student by variational score distillation, alternate updates",
    ),
    StageSpec(
        "joint",
        "stage II: generator and LGM reconstructor jointly on pseudo ground truth (75-step "
        "teacher sample -> LGM -> random-view renders), MSE + LPIPS",
        init_from="vsd",
    ),
)


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="geco",
            summary="GECO: one-step multi-view generator distilled from Zero123++ by VSD, "
            "then through an LGM reconstructor (image -> six views -> Gaussians).",
            config_class=GECOConfig,
            method_class="gs_method_geco.model:GECO",
            core_api="1.1",
            paper="Wang et al., GECO: Generative Image-to-3D within a SECOnd, "
            "https://cwchenwang.github.io/geco (2024)",
            # The six views sit at azimuths relative to the input and absolute elevations:
            # gs3d's azimuth-normalised frame.
            output_frame="azimuth",
            stages=STAGE_SPECS,
            has_weights=True,
        )
    )

"""gs3d plugin hooks: registers the ``agg`` method with its bundled procedural-world model."""

from __future__ import annotations

from pathlib import Path

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec, StageSpec
from gs_method_agg.config import AGGConfig

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "procedural-small"
EXAMPLES_DIR = PACKAGE_DIR / "examples"


# The cascade of Sec. 3.4 (names as config.STAGES): each stage starts from the weights the
# previous one trained.
STAGE_SPECS = (
    StageSpec(
        "warmup",
        "coarse generator regresses per-object 3DGS pseudo labels (attribute Chamfer)",
    ),
    StageSpec(
        "coarse",
        "coarse generator on rendering losses (L_rgba + w1 L_lpips)",
        init_from="warmup",
    ),
    StageSpec(
        "sr",
        "Gaussian super-resolution on rendering losses (coarse generator frozen unless "
        "sr_train_coarse)",
        init_from="coarse",
    ),
)


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="agg",
            summary="AGG: amortized single-image-to-3D Gaussians (hybrid coarse generator + "
            "Gaussian super-resolution).",
            config_class=AGGConfig,
            method_class="gs_method_agg.model:AGG",
            core_api="1.1",
            paper="Xu et al., AGG: Amortized Generative 3D Gaussians for Single Image to 3D, "
            "arXiv:2401.04099 (2024)",
            default_checkpoint=str(BUNDLED_CHECKPOINT)
            if (BUNDLED_CHECKPOINT / "config.json").is_file()
            else None,
            examples_dir=str(EXAMPLES_DIR) if EXAMPLES_DIR.is_dir() else None,
            output_frame="azimuth",
            stages=STAGE_SPECS,
            has_weights=True,
        )
    )

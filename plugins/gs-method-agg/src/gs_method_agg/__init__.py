"""gs-method-agg: AGG (Xu et al. 2024) as a gs3d method plugin.

- :class:`AGG` — the model (``AGG(AGGConfig.preset("paper"))``; ``generate(rgba)``);
- :class:`AGGConfig` — presets ``paper`` (the paper's sizes), ``small`` (the bundled
  procedural-world model), ``tiny`` (CPU tests);
- :class:`AGGTrainingModule` — the ``warmup`` / ``coarse`` / ``sr`` stages for the shared engine;
- :func:`load_bundled` — the procedural-world model shipped in this package.
"""

from gs_method_agg.config import STAGES, AGGConfig, GeometryConfig, ImageEncoderConfig
from gs_method_agg.generator import (
    CoarseGenerator,
    GaussianSuperResolution,
    GeometryPredictor,
    TextureField,
)
from gs_method_agg.image_encoder import ImageEncoder, SmallViT
from gs_method_agg.model import AGG, canonical_gaussians
from gs_method_agg.plugin import BUNDLED_CHECKPOINT, EXAMPLES_DIR

__version__ = "0.1.0"


def load_bundled(device: str = "cpu") -> AGG:
    """The bundled procedural-world ``small`` model."""
    from gs_core.errors import WeightsNotFoundError

    if not (BUNDLED_CHECKPOINT / "config.json").is_file():
        raise WeightsNotFoundError(
            f"{BUNDLED_CHECKPOINT}: the bundled AGG checkpoint is missing from this installation "
            "(reinstall gs-method-agg, or pass a checkpoint directory to AGG.from_pretrained)"
        )
    return AGG.from_pretrained(BUNDLED_CHECKPOINT, device=device)


def __getattr__(name: str):
    if name == "AGGTrainingModule":
        from gs_method_agg.training import AGGTrainingModule

        return AGGTrainingModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AGG",
    "BUNDLED_CHECKPOINT",
    "EXAMPLES_DIR",
    "STAGES",
    "AGGConfig",
    "AGGTrainingModule",
    "CoarseGenerator",
    "GaussianSuperResolution",
    "GeometryConfig",
    "GeometryPredictor",
    "ImageEncoder",
    "ImageEncoderConfig",
    "SmallViT",
    "TextureField",
    "__version__",
    "canonical_gaussians",
    "load_bundled",
]

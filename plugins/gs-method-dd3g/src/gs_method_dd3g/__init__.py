"""gs-method-dd3g: DD3G (Qin et al. 2025) as a gs3d method plugin.

- :class:`DD3G` - the student (image encoder + PEPD); ``generate(rgba, seed=...)``;
- :class:`DD3GConfig` - presets ``paper``, ``small`` (procedural world), ``tiny`` (CPU tests);
- :func:`generate_quadruples` / :class:`QuadrupleSet` - the teacher's ``{N, C, II, OI}``;
- ``DD3GTrainingModule`` - the distillation objective on the shared engine.
"""

from gs_method_dd3g.config import DD3GConfig
from gs_method_dd3g.curriculum import objective_weights, verification_weight
from gs_method_dd3g.model import DD3G, PEPD, gaussians_from_attributes
from gs_method_dd3g.quadruples import QuadrupleSet, generate_quadruples

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "DD3GTrainingModule":
        from gs_method_dd3g.training import DD3GTrainingModule

        return DD3GTrainingModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DD3G",
    "PEPD",
    "DD3GConfig",
    "DD3GTrainingModule",
    "QuadrupleSet",
    "__version__",
    "gaussians_from_attributes",
    "generate_quadruples",
    "objective_weights",
    "verification_weight",
]

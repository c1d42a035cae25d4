"""Per-object 3DGS fitting (``gs3d fit``): classic multi-view optimisation with gsplat's
``DefaultStrategy`` densification; AGG uses these fits as pseudo-labels."""

from gs_core.fitting.config import FitConfig
from gs_core.fitting.fit import FitResult, evaluate, fit_gaussians, scene_scale
from gs_core.fitting.object import fit_object, holdout_split

__all__ = [
    "FitConfig",
    "FitResult",
    "evaluate",
    "fit_gaussians",
    "fit_object",
    "holdout_split",
    "scene_scale",
]

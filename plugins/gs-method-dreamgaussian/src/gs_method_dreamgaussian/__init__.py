"""gs-method-dreamgaussian: DreamGaussian (Tang et al. 2024) image-to-3D as a gs3d method plugin.

- :class:`DreamGaussian` - the method (``DreamGaussian(DreamGaussianConfig.preset("paper"))``;
  ``generate(rgba)`` optimises Gaussians, then a textured mesh, for each image);
- :class:`DreamGaussianConfig` - presets ``paper`` (image.yaml, Zero123-XL), ``paper_stable``
  (Stable Zero123), ``procedural`` (the procedural-world Zero123 teacher), ``tiny`` (CPU tests);
- :class:`DreamGaussianStrategy` - DreamGaussian's densification as a gsplat strategy.

Importing this package imports neither gsplat nor the diffusion stack; they load with the
method's modules.
"""

from gs_method_dreamgaussian.config import (
    CameraConfig,
    DreamGaussianConfig,
    PriorConfig,
    Stage1Config,
    Stage2Config,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "DreamGaussian":
        from gs_method_dreamgaussian.model import DreamGaussian

        return DreamGaussian
    if name == "DreamGaussianStrategy":
        from gs_method_dreamgaussian.densification import DreamGaussianStrategy

        return DreamGaussianStrategy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CameraConfig",
    "DreamGaussian",
    "DreamGaussianConfig",
    "DreamGaussianStrategy",
    "PriorConfig",
    "Stage1Config",
    "Stage2Config",
    "__version__",
]

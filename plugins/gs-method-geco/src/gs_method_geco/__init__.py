"""gs-method-geco: GECO (Wang et al. 2024) as a gs3d method plugin.

- :class:`GECO` - the method (``GECO(GECOConfig.preset("paper"))``, or
  ``GECO.from_teacher(Zero123PlusGuidance.from_pretrained(...), config)``);
  ``generate(rgba, seed=s)`` runs G once, decodes six views and reconstructs Gaussians with LGM;
- :class:`GECOConfig` - presets ``paper``, ``small`` (procedural world), ``tiny`` (CPU tests).

Importing this package imports neither diffusers nor transformers; they load with the model.
"""

from gs_method_geco.config import STAGES, GECOConfig, GeneratorConfig, ReconstructorConfig

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "GECO":
        from gs_method_geco.model import GECO

        return GECO
    raise AttributeError(f"module 'gs_method_geco' has no attribute {name!r}")


__all__ = ["GECO", "STAGES", "GECOConfig", "GeneratorConfig", "ReconstructorConfig"]

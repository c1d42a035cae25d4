"""gs-method-compress3d: Compress3D (Zhang et al. 2024) as a gs3d method plugin.

- :class:`Compress3D` — the method (``Compress3D(Compress3DConfig.preset("paper"))``;
  ``generate(rgba)`` -> coloured meshes and Gaussians sampled on them);
- :class:`Compress3DConfig` — presets ``paper``, ``small`` (procedural world), ``tiny`` (CPU tests);
- :class:`TriplaneAutoencoder`, :class:`EmbeddingPrior`, :class:`TriplaneUNet` — the three
  networks (Sec. 3.1-3.3); :class:`Compress3DTrainingModule` — their stages on the shared engine;
- :func:`flexicubes_mesh` — FlexiCubes isosurface extraction.

Names are imported on first access, so registering the plugin stays cheap.
"""

from gs_core.lazy_exports import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Compress3D": "gs_method_compress3d.model",
    "Compress3DConfig": "gs_method_compress3d.config",
    "Compress3DTrainingModule": "gs_method_compress3d.training",
    "EmbeddingPrior": "gs_method_compress3d.prior",
    "ProceduralContrastiveEncoders": "gs_method_compress3d.procedural_encoders",
    "TriplaneAutoencoder": "gs_method_compress3d.autoencoder",
    "TriplaneUNet": "gs_method_compress3d.triplane_unet",
    "dual_guidance": "gs_method_compress3d.guidance",
    "flexicubes_mesh": "gs_method_compress3d.flexicubes",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [*_EXPORTS, "__version__"]

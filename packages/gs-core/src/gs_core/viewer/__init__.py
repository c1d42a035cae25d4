"""``gs3d view``: an interactive browser viewer for Gaussians, meshes and training runs, on viser.

Modules:

* :mod:`~gs_core.viewer.camera`: the browser's camera as gs_core ``Cameras``;
* :mod:`~gs_core.viewer.frames`: the render path (Gaussians -> 8-bit frames);
* :mod:`~gs_core.viewer.latest_only`: the throttle (draw the newest camera only);
* :mod:`~gs_core.viewer.splats`: Gaussians for viser's WebGL splat display (the default display
  when gs3d renders on a CPU);
* :mod:`~gs_core.viewer.mesh_glb`: a mesh as the (matte) GLB the browser draws;
* :mod:`~gs_core.viewer.training_run`: a run directory's newest checkpoint on a chosen input;
* :mod:`~gs_core.viewer.ports`: refusing a taken port;
* :mod:`~gs_core.viewer.server`: the :class:`Viewer` itself (the only module importing viser,
  from the extra ``gs3d-core[viewer]``).

Names are imported on first access, so ``import gs_core.viewer`` costs nothing.
"""

from gs_core.lazy_exports import lazy_exports

_EXPORTS = {
    "GaussianFrames": "gs_core.viewer.frames",
    "LatestOnlyWorker": "gs_core.viewer.latest_only",
    "TrainingRun": "gs_core.viewer.training_run",
    "RunInput": "gs_core.viewer.training_run",
    "Viewer": "gs_core.viewer.server",
    "ViewerCamera": "gs_core.viewer.camera",
    "check_port_free": "gs_core.viewer.ports",
    "matte_glb": "gs_core.viewer.mesh_glb",
    "resolve_display": "gs_core.viewer.server",
    "splat_arrays": "gs_core.viewer.splats",
    "to_cameras": "gs_core.viewer.camera",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

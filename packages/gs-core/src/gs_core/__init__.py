"""gs-core: the shared core of the gs3d toolkit.

Importing ``gs_core`` loads no third-party module: ``gs3d --help`` and the plugin listing
import it without torch. The torch-backed types below (``Cameras``, ``Gaussians``, ``Mesh``,
``render``, ``RenderOutput``) load on first access; optional heavy dependencies (gsplat,
trimesh, huggingface_hub, method plugins) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gs_core.errors import FileFormatError, GS3DError, ValidationError, WeightsNotFoundError
from gs_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gs_core.cameras import Cameras
    from gs_core.gaussians import Gaussians
    from gs_core.mesh import Mesh
    from gs_core.rendering import RenderOutput, render

_LAZY = {
    "Cameras": "gs_core.cameras",
    "Gaussians": "gs_core.gaussians",
    "Mesh": "gs_core.mesh",
    "RenderOutput": "gs_core.rendering",
    "render": "gs_core.rendering",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__version__ = "0.1.0"

# The plugin API a plugin declares it was written for (``MethodSpec.core_api``); the policy is in
# the package README. MAJOR changes when something a plugin relies on changes incompatibly (the
# Method contract, hook signatures, spec fields removed or retyped) and every plugin must be
# updated; MINOR grows with additions (new optional spec fields, new hooks, new keyword
# arguments with defaults). A plugin built for X.Y loads in any core with the same X and a minor
# >= Y; anything else is refused with a message naming both versions. 1.1 added MethodSpec's
# method_class / output_frame / stages / has_weights, generate(seed=), and the commands and
# priors hooks.
CORE_API_VERSION = "1.1"

__all__ = [
    "CORE_API_VERSION",
    "Cameras",
    "FileFormatError",
    "GS3DError",
    "Gaussians",
    "Mesh",
    "RenderOutput",
    "ValidationError",
    "WeightsNotFoundError",
    "__version__",
    "render",
]

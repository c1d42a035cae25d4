"""gs-core: the shared core of the gs3d toolkit.

Importing ``gs_core`` loads only torch, numpy and pydantic-free type modules; optional heavy
dependencies (gsplat, trimesh, huggingface_hub, method plugins) load on first use.
"""

from gs_core.cameras import Cameras
from gs_core.errors import FileFormatError, GS3DError, ValidationError, WeightsNotFoundError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.rendering import RenderOutput, render

__version__ = "0.1.0"

# The plugin API version method plugins declare they were built for. Bump the major on
# breaking changes of the Method contract or the hook specs.
CORE_API_VERSION = "1.0"

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

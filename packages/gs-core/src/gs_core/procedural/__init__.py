"""An offline procedural 3D world: textured primitive objects in category templates, rendered
by exact ray casting (independent of the Gaussian renderer), written as a ``transforms.json``
dataset. Entry points: :func:`generate` (``gs3d data procedural``), :func:`make_object`,
:func:`render_views`, :func:`sample_surface`."""

from gs_core.procedural.generator import EVAL_SEED, ProceduralConfig, generate
from gs_core.procedural.objects import Part, ProceduralObject
from gs_core.procedural.primitives import (
    Box,
    Capsule,
    Ellipsoid,
    Frustum,
    Primitive,
    Torus,
    cone,
    cylinder,
)
from gs_core.procedural.raycast import RenderedViews, cast, render_views
from gs_core.procedural.sampling import sample_surface
from gs_core.procedural.templates import CATEGORIES, make_object
from gs_core.procedural.textures import Texture

__all__ = [
    "CATEGORIES",
    "EVAL_SEED",
    "Box",
    "Capsule",
    "Ellipsoid",
    "Frustum",
    "Part",
    "Primitive",
    "ProceduralConfig",
    "ProceduralObject",
    "RenderedViews",
    "Texture",
    "Torus",
    "cast",
    "cone",
    "cylinder",
    "generate",
    "make_object",
    "render_views",
    "sample_surface",
]

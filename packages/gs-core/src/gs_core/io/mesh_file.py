"""Reading triangle meshes (``.glb``, ``.gltf``, ``.obj``, ``.ply``) into :class:`Mesh`, and
telling a Gaussian-splat PLY from a mesh PLY.

trimesh parses the formats (imported on first use, not at ``gs_core`` import); everything it
returns is checked by :meth:`Mesh.validate`, so a bad file fails with one line naming the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gs_core.errors import FileFormatError, GS3DError
from gs_core.mesh import Mesh

MESH_FILE_SUFFIXES = (".glb", ".gltf", ".obj", ".ply")
# The vertex properties only a 3DGS PLY has; a mesh PLY may carry x/y/z, normals and colours.
_GAUSSIAN_PROPERTIES = ("opacity", "scale_0", "rot_0", "f_dc_0")
# A PLY header is a few hundred bytes; this bounds the read when sniffing it.
_HEADER_LIMIT = 1 << 16


def ply_header(path: str | Path) -> list[str]:
    """The header lines of a PLY (between ``ply`` and ``end_header``), stripped."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(_HEADER_LIMIT)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise FileFormatError(path, "not a PLY file (no 'ply' ... 'end_header' header)")
    text = head[:end].decode("ascii", errors="replace")
    return [ln.strip() for ln in text.splitlines()[1:] if ln.strip()]


def is_gaussian_ply(path: str | Path) -> bool:
    """Whether the PLY's vertices carry 3DGS properties (opacity, scales, rotation, SH).

    Any one of them is enough: a Gaussian PLY with some missing is then refused by
    :func:`gs_core.io.load_ply` with the list of what is missing, not read as a mesh.
    """
    props = {ln.split()[-1] for ln in ply_header(path) if ln.startswith("property")}
    return any(p in props for p in _GAUSSIAN_PROPERTIES)


def load_mesh(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Mesh:
    """Read a triangle mesh file into a validated :class:`Mesh` (vertices ``[V, 3]``).

    A multi-object glTF/GLB scene is flattened with its node transforms applied. Keeps a base
    colour texture with its UVs when the file has one, else per-vertex colours, else none (the
    renderer then uses a neutral grey). Raises :class:`FileFormatError` for an unreadable or
    face-less file and :class:`~gs_core.errors.ValidationError` for bad contents (NaN vertices,
    face indices past the vertex count).
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_FILE_SUFFIXES:
        raise GS3DError(
            f"{path}: unsupported mesh format '{path.suffix}' "
            f"(expected {', '.join(MESH_FILE_SUFFIXES)})"
        )
    if not path.is_file():
        raise GS3DError(f"{path}: file not found")
    import trimesh

    try:
        tm = trimesh.load(path, force="mesh", process=False)
    except Exception as e:  # trimesh raises many types for corrupt files; report one line
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FileFormatError(path, f"not a readable mesh ({detail})") from None
    faces = np.asarray(getattr(tm, "faces", np.zeros((0, 3))))
    verts = np.asarray(getattr(tm, "vertices", np.zeros((0, 3))))
    if faces.size == 0:
        raise FileFormatError(path, "no triangle faces (an empty mesh or a point cloud)")
    vertex_colors = uvs = tex = None
    visual = tm.visual
    if visual.kind == "texture" and getattr(visual, "uv", None) is not None:
        image = _texture_image(visual.material)
        if image is not None:
            uvs = torch.from_numpy(np.asarray(visual.uv, np.float64)).to(device, dtype)
            tex = torch.from_numpy(image).to(device, dtype)
    if tex is None and visual.kind == "vertex":
        c = np.asarray(visual.vertex_colors)[:, :3]
        vertex_colors = torch.from_numpy(c.astype(np.float64) / 255.0).to(device, dtype)
    return Mesh(
        vertices=torch.from_numpy(verts.astype(np.float64)).to(device, dtype),
        faces=torch.from_numpy(faces.astype(np.int64)).to(device),
        vertex_colors=vertex_colors,
        uvs=uvs,
        texture=tex,
    ).validate()


def _texture_image(material) -> np.ndarray | None:
    """``[H, W, 3]`` float RGB in [0, 1] of a trimesh material's base colour image, if any."""
    image = getattr(material, "baseColorTexture", None)  # glTF PBR material
    if image is None:
        image = getattr(material, "image", None)  # OBJ/MTL simple material
    if image is None:
        return None
    return np.asarray(image.convert("RGB"), np.float64) / 255.0


__all__ = ["MESH_FILE_SUFFIXES", "is_gaussian_ply", "load_mesh", "ply_header"]

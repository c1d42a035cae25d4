"""One entry point for a scene file of any format gs3d reads: ``load_scene`` sniffs Gaussians
(``.splat``, 3DGS ``.ply``) from meshes (``.glb``, ``.obj``, face PLYs) so that the viewers and
renderers need not."""

from __future__ import annotations

from pathlib import Path

from gs_core.errors import FileFormatError, GS3DError


def load_scene(path: str | Path):
    """Gaussians for a .splat or a 3DGS .ply; a :class:`~gs_core.mesh.Mesh` for mesh files and
    face PLYs (a PLY is told apart by its header)."""
    path = Path(path)
    from gs_core.io import load_ply, load_splat
    from gs_core.io.mesh_file import MESH_FILE_SUFFIXES, is_gaussian_ply, load_mesh

    suffix = path.suffix.lower()
    if suffix == ".splat":
        g = load_splat(path)
    elif suffix == ".ply" and is_gaussian_ply(path):
        g = load_ply(path)
    elif suffix == ".ply":
        from gs_core.io.mesh_file import ply_header

        if not any(ln.split()[:2] == ["element", "face"] for ln in ply_header(path)):
            raise FileFormatError(
                path,
                "neither a 3DGS PLY (no opacity/scale/rotation properties) nor a mesh (no faces)",
            )
        return load_mesh(path)
    elif suffix in MESH_FILE_SUFFIXES:
        return load_mesh(path)
    else:
        raise GS3DError(
            f"{path}: unsupported scene format '{path.suffix}' "
            f"(expected .ply, .splat, {', '.join(s for s in MESH_FILE_SUFFIXES if s != '.ply')})"
        )
    if g.num_gaussians == 0:
        raise FileFormatError(path, "no Gaussians to render")
    return g


__all__ = ["load_scene"]

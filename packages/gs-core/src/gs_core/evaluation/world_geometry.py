"""Geometry scores of a prediction against the procedural world's exact geometry (``gs3d eval
--geometry``).

A prediction lives in the evaluation's frame (``world`` / ``azimuth`` / ``camera``); it is moved
into the dataset's world frame by the same rigid transform ``A`` (``p_world = A p_P``) the
harness applies to cameras, then scored against the object rebuilt from its ``transforms.json``
(:func:`gs_core.procedural.surface.procedural_reference`) by
:func:`~gs_core.evaluation.geometry.mesh_geometry_scores` (surface samples; volume IoU with
``iou_resolution``) or :func:`~gs_core.evaluation.geometry.gaussian_geometry_scores` (the
centres of the Gaussians with opacity >= ``MIN_OPACITY``, shortest axes as normals; no volume
IoU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gs_core.errors import GS3DError
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_core.rotations import quaternion_multiply, quaternion_of_rotation

# The keys of transforms.json's "gs3d" block that rebuild a procedural object.
PROCEDURAL_KEYS = ("category", "seed", "index")
PROCEDURAL_GENERATOR = "gs3d data procedural"


def check_procedural(object_dir: Path, meta: dict) -> None:
    """Refuse, in one line, an object whose ``transforms.json`` cannot rebuild its geometry."""
    missing = [k for k in PROCEDURAL_KEYS if k not in meta]
    if missing or meta.get("generator") != PROCEDURAL_GENERATOR:
        lacks = ", ".join(missing) if missing else "generator 'gs3d data procedural'"
        raise GS3DError(
            f"--geometry needs exact geometry, which only the procedural world has: "
            f"{object_dir / 'transforms.json'} lacks gs3d {lacks} (not made by gs3d data procedural)"
        )


def mesh_to_world(mesh: Mesh, A: np.ndarray) -> Mesh:
    """``mesh`` with vertices ``[V, 3]`` moved by the rigid ``A [4, 4]`` (colours kept)."""
    if np.allclose(A, np.eye(4)):
        return mesh
    At = torch.as_tensor(A, dtype=torch.float64, device=mesh.vertices.device)
    v = mesh.vertices.detach().double() @ At[:3, :3].T + At[:3, 3]
    return Mesh(v.to(mesh.vertices.dtype), mesh.faces, mesh.vertex_colors, mesh.uvs, mesh.texture)


def gaussians_to_world(gaussians: Gaussians, A: np.ndarray) -> Gaussians:
    """Unbatched ``gaussians [N]`` moved by the rigid ``A [4, 4]``: centres and orientations
    (the geometry scores use only these; SH colours are left unrotated)."""
    if np.allclose(A, np.eye(4)):
        return gaussians
    g = gaussians
    At = torch.as_tensor(A, dtype=torch.float64, device=g.means.device)
    means = g.means.detach().double() @ At[:3, :3].T + At[:3, 3]
    q = quaternion_of_rotation(torch.as_tensor(A[:3, :3])).to(g.quats.device)
    quats = quaternion_multiply(q, g.quats.detach().double())
    return Gaussians(means.to(g.means.dtype), quats.to(g.quats.dtype), g.scales, g.opacities, g.sh)


def prediction_geometry(
    shape: Mesh | Gaussians,
    A: np.ndarray,
    reference,
    points: int,
    iou_resolution: int | None,
    seed: int = 0,
) -> dict[str, float]:
    """Chamfer, accuracy, completeness, precision, recall, F-score at
    :data:`~gs_core.evaluation.geometry.FSCORE_THRESHOLD`, normal consistency (and, for a mesh
    with ``iou_resolution``, volume IoU) of ``shape`` (in the prediction frame, moved to the
    world by ``A``) against ``reference``, with ``points`` samples per set."""
    from gs_core.evaluation.geometry import gaussian_geometry_scores, mesh_geometry_scores

    if isinstance(shape, Mesh):
        return mesh_geometry_scores(
            mesh_to_world(shape, A),
            reference,
            samples=points,
            iou_resolution=iou_resolution,
            seed=seed,
        )
    return gaussian_geometry_scores(
        gaussians_to_world(shape, A), reference, max_points=points, seed=seed
    )


__all__ = [
    "check_procedural",
    "gaussians_to_world",
    "mesh_to_world",
    "prediction_geometry",
]

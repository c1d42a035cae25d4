"""A small triangle-mesh type for the methods that output meshes (DreamGaussian, GECO, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import GS3DError, ValidationError
from gs_core.io.atomic import atomic_path, check_overwrite


@dataclass(frozen=True, eq=False)
class Mesh:
    """Triangle mesh.

    Fields:
        vertices:      ``[V, 3]`` float positions.
        faces:         ``[F, 3]`` int vertex indices.
        vertex_colors: optional ``[V, 3]`` RGB in ``[0, 1]``.
        uvs:           optional ``[V, 2]`` texture coordinates in ``[0, 1]`` (v up, glTF flips it).
        texture:       optional ``[H, W, 3]`` RGB in ``[0, 1]``; requires ``uvs``.
    """

    vertices: torch.Tensor
    faces: torch.Tensor
    vertex_colors: torch.Tensor | None = None
    uvs: torch.Tensor | None = None
    texture: torch.Tensor | None = None

    def __post_init__(self) -> None:
        v, f = self.vertices, self.faces
        if (
            not isinstance(v, torch.Tensor)
            or v.ndim != 2
            or v.shape[1] != 3
            or not v.is_floating_point()
        ):
            raise ValidationError("Mesh.vertices", "a float tensor [V, 3]", _desc(v))
        if (
            not isinstance(f, torch.Tensor)
            or f.ndim != 2
            or f.shape[1] != 3
            or f.is_floating_point()
        ):
            raise ValidationError("Mesh.faces", "an integer tensor [F, 3]", _desc(f))
        if f.numel() and (int(f.min()) < 0 or int(f.max()) >= v.shape[0]):
            raise ValidationError(
                "Mesh.faces",
                f"indices in [0, {v.shape[0]})",
                f"range [{int(f.min())}, {int(f.max())}]",
            )
        if not bool(torch.isfinite(v).all()):
            raise ValidationError("Mesh.vertices", "finite values", "NaN/Inf entries")
        if self.vertex_colors is not None and tuple(self.vertex_colors.shape) != (v.shape[0], 3):
            raise ValidationError(
                "Mesh.vertex_colors", f"shape ({v.shape[0]}, 3)", _desc(self.vertex_colors)
            )
        if self.uvs is not None and tuple(self.uvs.shape) != (v.shape[0], 2):
            raise ValidationError("Mesh.uvs", f"shape ({v.shape[0]}, 2)", _desc(self.uvs))
        if self.texture is not None:
            if self.uvs is None:
                raise ValidationError("Mesh.texture", "uvs to be given with a texture")
            if self.texture.ndim != 3 or self.texture.shape[-1] != 3:
                raise ValidationError("Mesh.texture", "shape [H, W, 3]", _desc(self.texture))

    @property
    def num_vertices(self) -> int:
        return self.vertices.shape[0]

    @property
    def num_faces(self) -> int:
        return self.faces.shape[0]

    def to_trimesh(self):
        """Convert to a ``trimesh.Trimesh`` (trimesh is imported here, not at gs_core import)."""
        import trimesh
        from PIL import Image

        v = self.vertices.detach().cpu().numpy().astype(np.float64)
        f = self.faces.detach().cpu().numpy().astype(np.int64)
        visual = None
        if self.texture is not None:
            tex = (self.texture.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
            visual = trimesh.visual.TextureVisuals(
                uv=self.uvs.detach().cpu().numpy(), image=Image.fromarray(tex)
            )
        elif self.vertex_colors is not None:
            c = (
                (self.vertex_colors.detach().cpu().clamp(0, 1).numpy() * 255)
                .round()
                .astype(np.uint8)
            )
            visual = trimesh.visual.ColorVisuals(
                vertex_colors=np.concatenate([c, np.full((len(c), 1), 255, np.uint8)], 1)
            )
        return trimesh.Trimesh(vertices=v, faces=f, visual=visual, process=False)

    def export(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write ``.glb``, ``.gltf``, ``.obj`` or ``.ply`` (by extension), atomically."""
        path = Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext not in {"glb", "obj", "ply", "gltf"}:
            raise GS3DError(
                f"{path}: unsupported mesh format '.{ext}' (expected .glb, .gltf, .obj or .ply)"
            )
        check_overwrite(path, overwrite)
        data = self.to_trimesh().export(file_type=ext)
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, dict):  # trimesh returns a dict of files for OBJ with textures
            raise GS3DError(f"{path}: textured OBJ needs several files; export .glb instead")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return path

    def __repr__(self) -> str:
        extra = (
            " textured"
            if self.texture is not None
            else (" coloured" if self.vertex_colors is not None else "")
        )
        return f"Mesh(V={self.num_vertices}, F={self.num_faces}{extra})"


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)}"
    return type(x).__name__

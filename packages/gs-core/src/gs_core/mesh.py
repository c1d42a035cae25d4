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
        # Construction allows an empty mesh (a placeholder a method may fill or a caller may
        # reject); everything that renders, samples or scores a mesh calls validate() first.
        # On a GPU the value checks wait for validate(), as Cameras' do: reading them back
        # would synchronise every construction (Compress3D builds a mesh per object per step).
        self.validate(allow_empty=True, values=self.vertices.device.type == "cpu")

    def validate(self, allow_empty: bool = False, values: bool = True) -> Mesh:
        """Check shapes, dtypes, devices, index ranges and finiteness; return ``self``.

        Raises :class:`~gs_core.errors.ValidationError` naming the first bad field: a mesh with
        no vertices or no faces (unless ``allow_empty``), NaN/Inf vertices, colours, UVs or
        texels, face indices that are negative or ``>= V``. Degenerate faces are legal here
        (see :meth:`degenerate_faces` / :meth:`drop_degenerate`). ``values=False`` checks the
        structure only. The value checks are read back from the device at once (one
        synchronisation on a GPU); the message's details are computed only for a failure.
        """
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
            or f.dtype == torch.bool
            or f.is_complex()
        ):
            raise ValidationError("Mesh.faces", "an integer tensor [F, 3]", _desc(f))
        if not allow_empty:
            if v.shape[0] == 0:
                raise ValidationError("Mesh.vertices", "at least 3 vertices", "an empty mesh")
            if f.shape[0] == 0:
                raise ValidationError("Mesh.faces", "at least one face", "an empty mesh")
        if f.device != v.device:
            raise ValidationError(
                "Mesh.faces", f"a tensor on {v.device} (as vertices)", str(f.device)
            )
        floats = []  # (field, tensor) whose entries must be finite, in the order reported
        for name, t, shape in (
            ("vertex_colors", self.vertex_colors, (v.shape[0], 3)),
            ("uvs", self.uvs, (v.shape[0], 2)),
        ):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape:
                raise ValidationError(f"Mesh.{name}", f"shape {shape}", _desc(t))
            _check_float_on(f"Mesh.{name}", t, v.device)
            floats.append((f"Mesh.{name}", t))
        if self.texture is not None:
            if self.uvs is None:
                raise ValidationError("Mesh.texture", "uvs to be given with a texture")
            t = self.texture
            if not isinstance(t, torch.Tensor) or t.ndim != 3 or t.shape[-1] != 3 or 0 in t.shape:
                raise ValidationError("Mesh.texture", "shape [H, W, 3]", _desc(t))
            _check_float_on("Mesh.texture", t, v.device)
            floats.append(("Mesh.texture", t))
        if values:
            self._check_values(floats)
        return self

    def _check_values(self, floats: list[tuple[str, torch.Tensor]]) -> None:
        v, f = self.vertices, self.faces
        with torch.no_grad():
            flags = []
            if f.numel():
                flags.append((f.min() < 0) | (f.max() >= v.shape[0]))
            flags.append(~torch.isfinite(v).all())
            flags += [~torch.isfinite(t).all() for _, t in floats]
            bad = torch.stack(flags).tolist()
        if not any(bad):
            return
        if f.numel() and bad.pop(0):
            raise ValidationError(
                "Mesh.faces",
                f"indices in [0, {v.shape[0]})",
                f"range [{int(f.min())}, {int(f.max())}]",
            )
        if bad.pop(0):
            n = int((~torch.isfinite(v)).any(-1).sum())
            raise ValidationError("Mesh.vertices", "finite values", f"{n} NaN/Inf vertices")
        for (name, t), b in zip(floats, bad, strict=True):
            if b:
                n = int((~torch.isfinite(t)).sum())
                raise ValidationError(name, "finite values", f"{n} NaN/Inf entries")

    # ------------------------------------------------------------------ geometry
    def _corners(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Face corner positions, each ``[F, 3]``."""
        tri = self.vertices[self.faces]  # [F, 3, 3]
        return tri[:, 0], tri[:, 1], tri[:, 2]

    def _face_cross(self) -> torch.Tensor:
        """``(b - a) x (c - a)`` per face ``[F, 3]``: twice the area times the unit normal."""
        a, b, c = self._corners()
        return torch.linalg.cross(b - a, c - a)

    def face_areas(self) -> torch.Tensor:
        """Triangle areas ``[F]`` (differentiable in the vertices)."""
        return 0.5 * self._face_cross().norm(dim=-1)

    def face_normals(self) -> torch.Tensor:
        """Unit face normals ``[F, 3]`` by the right-hand rule on ``(a, b, c)``; zero for
        degenerate faces (counter-clockwise faces seen from outside point outwards)."""
        n = self._face_cross()
        return n / n.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(n.dtype).tiny)

    def vertex_normals(self) -> torch.Tensor:
        """Unit vertex normals ``[V, 3]``: the area-weighted mean of the adjacent face normals
        (summing unnormalised cross products weights by area). Vertices that no face of
        positive area touches get zero."""
        n = self._face_cross()
        acc = torch.zeros_like(self.vertices)
        for k in range(3):
            acc = acc.index_add(0, self.faces[:, k], n)
        norm = acc.norm(dim=-1, keepdim=True)
        return torch.where(norm > 0, acc / norm.clamp_min(torch.finfo(acc.dtype).tiny), 0.0)

    def degenerate_faces(self, eps: float = 1e-12) -> torch.Tensor:
        """Mask ``[F]`` of degenerate faces: a repeated vertex index, or an area at most
        ``eps`` times the squared bounding-box diagonal (relative, so the test does not
        depend on the mesh's units). ``int(mask.sum())`` counts them."""
        f = self.faces
        repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
        if self.num_vertices == 0 or f.shape[0] == 0:
            return repeated
        with torch.no_grad():
            v = self.vertices
            diag2 = float((v.amax(0) - v.amin(0)).square().sum())
            return repeated | (self.face_areas() <= eps * diag2)

    def drop_degenerate(self, eps: float = 1e-12) -> Mesh:
        """A mesh without the faces :meth:`degenerate_faces` flags (vertices are kept, so
        colours and UVs still line up)."""
        keep = ~self.degenerate_faces(eps)
        return Mesh(
            vertices=self.vertices,
            faces=self.faces[keep],
            vertex_colors=self.vertex_colors,
            uvs=self.uvs,
            texture=self.texture,
        )

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

        self.validate(allow_empty=True)  # a mesh built on a GPU had its values unchecked
        v = self.vertices.detach().cpu().numpy().astype(np.float64)
        f = self.faces.detach().cpu().numpy().astype(np.int64)
        visual = None
        if self.texture is not None:
            tex = (self.texture.detach().cpu().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
            # trimesh's default material multiplies the texture by a grey diffuse, which every
            # glTF viewer shows 40% darker: the texture alone is the colour.
            material = trimesh.visual.material.SimpleMaterial(
                image=Image.fromarray(tex), diffuse=[255, 255, 255, 255]
            )
            visual = trimesh.visual.TextureVisuals(
                uv=self.uvs.detach().cpu().numpy(), material=material
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
        """Write ``.glb``, ``.gltf``, ``.obj`` or ``.ply`` (by extension), atomically. A texture
        goes inside a ``.glb``, beside an ``.obj`` (``NAME.mtl`` + ``NAME.png``); ``.ply`` holds
        no texture image, and a textured ``.gltf`` is refused."""
        path = Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext not in {"glb", "obj", "ply", "gltf"}:
            raise GS3DError(
                f"{path}: unsupported mesh format '.{ext}' (expected .glb, .gltf, .obj or .ply)"
            )
        check_overwrite(path, overwrite)
        if ext == "obj" and self.texture is not None:
            return self._export_textured_obj(path, overwrite)
        if ext == "gltf" and self.texture is not None:
            raise GS3DError(f"{path}: a textured .gltf needs several files; export .glb instead")
        data = self.to_trimesh().export(file_type=ext)
        if isinstance(data, str):
            data = data.encode()
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return path

    def _export_textured_obj(self, path: Path, overwrite: bool) -> Path:
        """``NAME.obj`` with ``NAME.mtl`` and ``NAME.png`` beside it (an OBJ keeps its texture
        in side files; they are named after the OBJ so two exports in one folder don't clash)."""
        from trimesh.exchange.obj import export_obj

        tm = self.to_trimesh()
        tm.visual.material.name = path.stem
        text, files = export_obj(tm, return_texture=True, mtl_name=f"{path.stem}.mtl")
        for name in files:
            check_overwrite(path.with_name(name), overwrite)
        for name, data in files.items():
            with atomic_path(path.with_name(name)) as tmp:
                tmp.write_bytes(data)
        with atomic_path(path) as tmp:
            tmp.write_bytes(text.encode())
        return path

    def __repr__(self) -> str:
        extra = (
            " textured"
            if self.texture is not None
            else (" coloured" if self.vertex_colors is not None else "")
        )
        return f"Mesh(V={self.num_vertices}, F={self.num_faces}{extra})"


def _check_float_on(field: str, t: torch.Tensor, device: torch.device) -> None:
    if not t.is_floating_point():
        raise ValidationError(field, "a float tensor", str(t.dtype))
    if t.device != device:
        raise ValidationError(field, f"a tensor on {device} (as vertices)", str(t.device))


def _desc(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} shape {tuple(x.shape)}"
    return type(x).__name__

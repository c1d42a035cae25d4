"""The triplane VAE (Sec. 3.1): encoder, decoder, FlexiCubes and colour heads.

``encode(xyz, rgb)`` -> :class:`DiagonalGaussian` over latents ``[B, 3, c', r', r']``;
``decode(latent)`` -> planes ``[B, 3, C, R, R]``; ``extract(planes)`` -> one coloured
:class:`~gs_core.Mesh` per shape (FlexiCubes' dual marching cubes on the heads' SDF,
deformation and weights; colours from the colour head at the mesh vertices, and with
``decoder.color_query="surface_points"`` at every rendered surface point through
``DecodedShape.surface_color``). World coordinates
span the FlexiCubes grid ``[-s/2, s/2]^3``; the networks see them divided by ``s/2``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gs_core.errors import GS3DError
from gs_core.mesh import Mesh
from gs_method_compress3d.config import Compress3DConfig
from gs_method_compress3d.flexicubes import flexicubes_mesh, grid_cubes, grid_vertices
from gs_method_compress3d.posterior import DiagonalGaussian
from gs_method_compress3d.surface_heads import SurfaceHeads
from gs_method_compress3d.triplane_decoder import TriplaneDecoder
from gs_method_compress3d.triplane_encoder import TriplaneEncoder


@dataclass
class DecodedShape:
    """One decoded shape: the coloured mesh and the terms its regularisers need."""

    mesh: Mesh | None  # None: no surface (only with extract(..., allow_empty=True))
    l_dev: torch.Tensor  # FlexiCubes' dual-vertex deviation regulariser (scalar)
    sdf: torch.Tensor  # [N_v] grid SDF
    grid_edges: torch.Tensor  # [E, 2] neighbouring grid vertices
    # world points [P, 3] -> RGB [P, 3]: the colour MLP on this shape's planes, for deferred
    # shading (``decoder.color_query="surface_points"``); None renders the vertex colours
    surface_color: Callable[[torch.Tensor], torch.Tensor] | None = None


def grid_edges(points: torch.Tensor, resolution: int, scale: float) -> torch.Tensor:
    """Pairs of axis-neighbouring vertices ``[E, 2]`` of the regular grid ``points [N_v, 3]``
    (any vertex order: neighbours are found from the integer coordinates)."""
    n = resolution + 1
    ijk = torch.round((points / scale + 0.5) * resolution).long().clamp(0, resolution)
    lin = ijk[:, 0] + n * (ijk[:, 1] + n * ijk[:, 2])
    where = torch.full((n**3,), -1, dtype=torch.long, device=points.device)
    where[lin] = torch.arange(points.shape[0], device=points.device)
    edges = []
    for axis, step in ((0, 1), (1, n), (2, n * n)):
        keep = ijk[:, axis] < resolution
        a = torch.nonzero(keep)[:, 0]
        edges.append(torch.stack([a, where[lin[keep] + step]], dim=-1))
    return torch.cat(edges)


class TriplaneAutoencoder(nn.Module):
    def __init__(self, config: Compress3DConfig):
        super().__init__()
        self.config = config
        dec = config.decoder
        self.encoder = TriplaneEncoder(config.encoder, config.attention)
        self.decoder = TriplaneDecoder(dec, config.encoder.latent_channels)
        self.heads = SurfaceHeads(
            dec.plane_channels[-1], dec.head_hidden, dec.head_layers, dec.init_radius
        )
        self._grid: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    @property
    def half_extent(self) -> float:
        return 0.5 * self.config.decoder.grid_scale

    def grid(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cached ``(vertices [N_v, 3] world, cubes [N_c, 8], edges [E, 2])`` of the grid."""
        key = str(device)
        if key not in self._grid:
            res, s = self.config.decoder.grid_resolution, self.config.decoder.grid_scale
            verts = grid_vertices(res, s, device=device)
            cubes = grid_cubes(res).to(device)
            self._grid[key] = (verts, cubes, grid_edges(verts, res, s))
        return self._grid[key]

    def encode(self, xyz: torch.Tensor, rgb: torch.Tensor) -> DiagonalGaussian:
        """``xyz [B, N, 3]`` world points in the grid cube, ``rgb [B, N, 3]`` in [0, 1]."""
        return self.encoder(xyz / self.half_extent, rgb)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)

    def extract(
        self, planes: torch.Tensor, training: bool | None = None, allow_empty: bool = False
    ) -> list[DecodedShape]:
        """Decoded planes ``[B, 3, C, R, R]`` -> one :class:`DecodedShape` per shape.

        A shape whose SDF never changes sign has no surface: :class:`GS3DError`, or with
        ``allow_empty`` (training) a :class:`DecodedShape` whose ``mesh`` is ``None``.
        """
        training = self.training if training is None else training
        verts, cubes, edges = self.grid(planes.device)
        unit = verts / self.half_extent
        # FlexiCubes' crossings and the SDF heads run in fp32 even under autocast: bf16
        # rounding of SDF values moves the surface by whole grid fractions.
        with torch.autocast(planes.device.type, enabled=False):
            return [
                self._extract_one(planes[b].float(), b, unit, cubes, edges, training, allow_empty)
                for b in range(planes.shape[0])
            ]

    def _extract_one(self, planes, index, unit, cubes, edges, training, allow_empty):
        dec = self.config.decoder
        sdf, deform, weights = self.heads.vertex_fields(planes, unit, cubes)
        fc = flexicubes_mesh(
            sdf, deform, weights, dec.grid_resolution, dec.grid_scale, training=training
        )
        if fc.faces.shape[0] == 0:
            if allow_empty:
                return DecodedShape(mesh=None, l_dev=fc.l_dev, sdf=sdf, grid_edges=edges)
            raise GS3DError(
                f"decoded shape {index}: the SDF has no zero crossing on the "
                f"{dec.grid_resolution}^3 FlexiCubes grid (no surface to extract)"
            )
        colors = self.surface_colors(planes, fc.vertices)
        mesh = Mesh(vertices=fc.vertices, faces=fc.faces, vertex_colors=colors)
        query = None
        if dec.color_query == "surface_points":
            query = functools.partial(self.surface_colors, planes)
        return DecodedShape(
            mesh=mesh, l_dev=fc.l_dev, sdf=sdf, grid_edges=edges, surface_color=query
        )

    def surface_colors(self, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """The colour head of one shape's ``planes [3, C, R, R]`` at world ``points [P, 3]``."""
        unit = (points / self.half_extent).clamp(-1, 1)
        with torch.autocast(planes.device.type, enabled=False):
            return self.heads.colors(planes.float(), unit.float())


def surface_sdf(heads: SurfaceHeads, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``|SDF|`` at ground-truth surface points ``[N, 3]`` (in ``[-1, 1]^3``) of one shape's
    ``planes [3, C, R, R]``: pulls a decoded shape that lost its surface back to one."""
    return heads.sdf_at(planes, points).abs().mean()


def sdf_sign_regularizer(sdf: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """nvdiffrec / FlexiCubes' ``L_SDF``: binary cross-entropy between the two ends of every
    grid edge whose SDF changes sign, which removes floating and internal surfaces."""
    a, b = sdf[edges[:, 0]], sdf[edges[:, 1]]
    flip = (torch.sign(a) != torch.sign(b)).to(sdf.dtype)
    bce = F.binary_cross_entropy_with_logits(
        a, (b > 0).to(sdf.dtype), reduction="none"
    ) + F.binary_cross_entropy_with_logits(b, (a > 0).to(sdf.dtype), reduction="none")
    # a masked mean rather than indexing, so no host sync on the count
    return 0.5 * (bce * flip).sum() / flip.sum().clamp_min(1.0)


__all__ = [
    "DecodedShape",
    "TriplaneAutoencoder",
    "grid_edges",
    "sdf_sign_regularizer",
    "surface_sdf",
]

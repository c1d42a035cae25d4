"""Gaussians to meshes (gs_core.meshing): density grid, marching cubes, cleaning, decimation,
vertex colours and UV unwrapping. CPU, seconds; the CUDA density parity test runs with -m gpu."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import trimesh

from gs_core import Gaussians, Mesh
from gs_core.errors import GS3DError, ValidationError
from gs_core.meshing import (
    clean_mesh,
    decimate,
    gaussian_density,
    gaussians_to_mesh,
    marching_cubes,
    unwrap_uv,
)
from gs_core.meshing.clean import face_components, merge_close_vertices, orient_outward
from gs_core.meshing.density import grid_points
from gs_core.rendering.projection import quat_to_rotmat


def _ball(radius=0.5, spacing=0.05, opacity=0.5):
    """Gaussians on a lattice filling a ball; red where x > 0, blue elsewhere."""
    ax = torch.arange(-radius, radius + 1e-6, spacing)
    p = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    p = p[p.norm(dim=-1) <= radius]
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    colors = torch.where(p[:, :1] > 0, red, blue)
    return Gaussians.from_colors(p, colors, scales=0.6 * spacing, opacities=opacity)


def _sphere(radius=1.0, center=(0.0, 0.0, 0.0), subdivisions=2) -> Mesh:
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    v = torch.tensor(s.vertices, dtype=torch.float32) + torch.tensor(center)
    return Mesh(vertices=v, faces=torch.tensor(s.faces, dtype=torch.long))


def _union(*meshes: Mesh) -> Mesh:
    verts, faces, offset = [], [], 0
    for m in meshes:
        verts.append(m.vertices)
        faces.append(m.faces + offset)
        offset += m.num_vertices
    return Mesh(vertices=torch.cat(verts), faces=torch.cat(faces))


def _edge_counts(mesh: Mesh) -> torch.Tensor:
    f = mesh.faces
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
    return torch.unique(edges, dim=0, return_counts=True)[1]


def _outward_fraction(mesh: Mesh, center=(0.0, 0.0, 0.0)) -> float:
    n = mesh.face_normals()
    c = mesh.vertices[mesh.faces].mean(1) - torch.tensor(center)
    return float(((n * c).sum(-1) > 0).float().mean())


# ---------------------------------------------------------------------------------- density
def _closed_form(points, g: Gaussians) -> torch.Tensor:
    """sum_i o_i exp(-0.5 d^T Sigma_i^-1 d) by a dense inverse, at points [..., 3]."""
    rot = quat_to_rotmat(g.quats)
    cov = rot @ torch.diag_embed(g.scales.square()) @ rot.transpose(-1, -2)
    d = points[..., None, :] - g.means  # [..., N, 3]
    maha = torch.einsum("...na,nab,...nb->...n", d, torch.linalg.inv(cov), d)
    return (g.opacities * torch.exp(-0.5 * maha)).sum(-1)


def test_density_of_one_isotropic_gaussian_is_the_closed_form():
    sigma, opacity, mu = 0.1, 0.7, torch.tensor([0.05, -0.02, 0.1])
    g = Gaussians.from_colors(mu[None], torch.rand(1, 3), scales=sigma, opacities=opacity)
    bounds = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])
    grid, used = gaussian_density(g, 21, bounds, cutoff=100.0)  # no cut: exact everywhere
    assert grid.shape == (21, 21, 21) and torch.equal(used, bounds)
    x = grid_points(bounds, 21)
    expected = opacity * torch.exp(-0.5 * (x - mu).square().sum(-1) / sigma**2)
    torch.testing.assert_close(grid, expected, atol=1e-6, rtol=1e-5)

    # with the 3-sigma box: exact inside the box, zero outside
    boxed, _ = gaussian_density(g, 21, bounds, cutoff=3.0)
    in_box = ((x - mu).abs() <= 3 * sigma).all(-1)
    torch.testing.assert_close(boxed[in_box], expected[in_box], atol=1e-6, rtol=1e-5)
    assert bool((boxed[~in_box] == 0).all()) and bool((expected[~in_box] > 0).any())


def test_density_of_rotated_anisotropic_gaussians_any_chunking():
    gen = torch.Generator().manual_seed(0)
    n = 12
    means = torch.rand(n, 3, generator=gen) - 0.5
    g = Gaussians(
        means=means,
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        scales=torch.rand(n, 3, generator=gen) * 0.15 + 0.02,
        opacities=torch.rand(n, generator=gen),
        sh=torch.zeros(n, 1, 3),
    )
    bounds = torch.tensor([[-0.8] * 3, [0.8] * 3])
    grid, _ = gaussian_density(g, 17, bounds, cutoff=100.0)
    torch.testing.assert_close(grid, _closed_form(grid_points(bounds, 17), g), atol=1e-5, rtol=1e-4)
    # blocks of one Gaussian each give the same sums as one block of all
    small, _ = gaussian_density(g, 17, bounds, cutoff=100.0, chunk=1)
    torch.testing.assert_close(small, grid, atol=1e-6, rtol=1e-5)


def test_density_default_bounds_and_errors():
    g = _ball()
    _, bounds = gaussian_density(g, 8)
    # the centres' box fills 90% of the cube (DreamGaussian's normalisation)
    torch.testing.assert_close(bounds, torch.tensor([[-0.5 / 0.9] * 3, [0.5 / 0.9] * 3]))
    with pytest.raises(ValidationError, match="^resolution:"):
        gaussian_density(g, 1)
    with pytest.raises(ValidationError, match="^bounds:"):
        gaussian_density(g, 8, torch.tensor([[1.0, 0, 0], [0.0, 1, 1]]))
    with pytest.raises(ValidationError, match="^gaussians:"):
        gaussian_density(_batched(g), 8)


def _batched(g: Gaussians) -> Gaussians:
    return Gaussians(
        means=g.means[None],
        quats=g.quats[None],
        scales=g.scales[None],
        opacities=g.opacities[None],
        sh=g.sh[None],
    )


# ---------------------------------------------------------------------------------- extraction
def test_marching_cubes_winds_outwards_and_maps_to_world():
    bounds = torch.tensor([[-1.0] * 3, [1.0] * 3])
    x = grid_points(bounds, 24)
    grid = 0.6 - x.norm(dim=-1)  # positive inside a sphere of radius 0.6
    mesh = marching_cubes(grid, bounds, 0.0)
    r = mesh.vertices.norm(dim=-1)
    assert float((r - 0.6).abs().max()) < 0.02
    assert _outward_fraction(mesh) == 1.0
    assert bool((_edge_counts(mesh) == 2).all())


def test_marching_cubes_level_with_no_surface_names_the_level():
    grid = torch.rand(8, 8, 8)
    bounds = torch.tensor([[0.0] * 3, [1.0] * 3])
    with pytest.raises(ValidationError, match=r"^level: expected .*got 2\.0 \(no surface\)"):
        marching_cubes(grid, bounds, 2.0)
    with pytest.raises(ValidationError, match="^level:"):
        gaussians_to_mesh(_ball(), resolution=16, level=100.0)


def test_ball_of_gaussians_gives_a_closed_outward_coloured_mesh():
    mesh = gaussians_to_mesh(_ball(), resolution=32, faces=3000)
    assert 0 < mesh.num_faces <= 3000
    r = mesh.vertices.norm(dim=-1)
    # the 0.5-radius lattice of Gaussians with sigma 0.03: the level-1 surface lies within a
    # lattice spacing of the radius
    assert float(r.min()) > 0.45 and float(r.max()) < 0.55
    assert bool((_edge_counts(mesh) == 2).all()), "not closed"
    assert len(face_components(mesh).unique()) == 1
    assert _outward_fraction(mesh) == 1.0
    # colours come from the Gaussians: red on the +x side, blue on the -x side
    c = mesh.vertex_colors
    right, left = mesh.vertices[:, 0] > 0.2, mesh.vertices[:, 0] < -0.2
    assert bool((c[right, 0] > 0.95).all()) and bool((c[right, 2] < 0.05).all())
    assert bool((c[left, 2] > 0.95).all()) and bool((c[left, 0] < 0.05).all())


def test_transparent_gaussians_are_rejected_by_name():
    with pytest.raises(ValidationError, match="^gaussians.opacities:"):
        gaussians_to_mesh(_ball(opacity=0.001), resolution=16)


# ---------------------------------------------------------------------------------- cleaning
def test_small_components_are_dropped_and_the_large_kept():
    big = _sphere(1.0, subdivisions=2)  # 320 faces
    small = _sphere(0.05, center=(3.0, 0.0, 0.0), subdivisions=0)  # 20 faces
    both = _union(big, small)
    assert len(face_components(both).unique()) == 2
    cleaned = clean_mesh(both, min_component_fraction=0.1)
    assert cleaned.num_faces == big.num_faces and cleaned.num_vertices == big.num_vertices
    assert float(cleaned.vertices[:, 0].max()) < 1.01
    kept = clean_mesh(both, min_component_fraction=0.01)
    assert kept.num_faces == both.num_faces


def test_orient_outward_flips_each_inverted_component():
    a = _sphere(1.0)
    b = _sphere(0.5, center=(4.0, 1.0, 0.0))
    b = Mesh(vertices=b.vertices, faces=b.faces[:, [0, 2, 1]])  # inward
    fixed = orient_outward(_union(a, b))
    na = a.num_faces
    part_a = Mesh(vertices=fixed.vertices, faces=fixed.faces[:na])
    part_b = Mesh(vertices=fixed.vertices, faces=fixed.faces[na:])
    assert _outward_fraction(part_a) == 1.0
    assert _outward_fraction(part_b, center=(4.0, 1.0, 0.0)) == 1.0


def test_merge_close_vertices_rejoins_a_split_mesh():
    s = _sphere(1.0)
    # every face with its own three vertices, nudged by far less than the merge distance
    split_v = s.vertices[s.faces.reshape(-1)] + 1e-5 * torch.randn(s.num_faces * 3, 3)
    split = Mesh(vertices=split_v, faces=torch.arange(s.num_faces * 3).reshape(-1, 3))
    assert len(face_components(split).unique()) == s.num_faces
    merged = merge_close_vertices(split, 1e-2)
    assert merged.num_vertices == s.num_vertices and merged.num_faces == s.num_faces
    assert bool((_edge_counts(merged) == 2).all())
    # a merge that collapses faces drops them (and their duplicates), never keeps degenerates
    coarse = merge_close_vertices(s, 0.6)
    f = coarse.faces
    assert bool(((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])).all())
    assert len(torch.unique(f.sort(1).values, dim=0)) == len(f)


# ---------------------------------------------------------------------------------- decimation
def test_decimation_respects_the_face_budget():
    s = _sphere(1.0, subdivisions=4)  # 5120 faces
    for budget in (1000, 300):
        d = decimate(s, budget)
        assert 0.8 * budget <= d.num_faces <= budget
        assert bool((_edge_counts(d) == 2).all())
        assert float((d.vertices.norm(dim=-1) - 1).abs().max()) < 0.1
        assert d.faces.max() < d.num_vertices  # unused vertices compacted
    assert decimate(s, 10_000) is s
    with pytest.raises(ValidationError, match="^faces:"):
        decimate(s, 0)


# ---------------------------------------------------------------------------------- UVs
def test_xatlas_uvs_lie_in_the_unit_square_and_keep_the_surface():
    s = _sphere(1.0, subdivisions=1)
    s = Mesh(vertices=s.vertices, faces=s.faces, vertex_colors=torch.rand(s.num_vertices, 3))
    u = unwrap_uv(s)
    assert u.uvs is not None and u.uvs.shape == (u.num_vertices, 2)
    assert float(u.uvs.min()) >= 0.0 and float(u.uvs.max()) <= 1.0
    assert u.num_faces == s.num_faces and u.num_vertices >= s.num_vertices
    # same triangles in space, colours carried to the split vertices
    torch.testing.assert_close(u.vertices[u.faces], s.vertices[s.faces])
    torch.testing.assert_close(u.vertex_colors[u.faces], s.vertex_colors[s.faces])
    # charts do not fold: every face has a non-zero UV area
    t = u.uvs[u.faces]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    assert bool(((e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs() > 0).all())


def test_uvs_in_pieces_share_one_atlas_without_overlap():
    s = _sphere(1.0, subdivisions=3)  # 1,280 faces
    s = Mesh(vertices=s.vertices, faces=s.faces, vertex_colors=torch.rand(s.num_vertices, 3))
    u = unwrap_uv(s, pieces=4)
    assert u.num_faces == s.num_faces and float(u.uvs.min()) >= 0 and float(u.uvs.max()) <= 1
    # faces keep their order and their corners, across the cut
    torch.testing.assert_close(u.vertices[u.faces], s.vertices[s.faces])
    torch.testing.assert_close(u.vertex_colors[u.faces], s.vertex_colors[s.faces])
    # the four pieces are packed side by side: sampled UV points fall in at most one face
    t = u.uvs[u.faces].double()  # [F, 3, 2]
    grid = torch.stack(torch.meshgrid(*[torch.linspace(0, 1, 200, dtype=torch.float64)] * 2,
                                      indexing="ij"), -1).reshape(-1, 2)  # fmt: skip
    a, b, c = (t[None, :, k] for k in range(3))  # [1, F, 2]

    def cross(o, p, q):  # broadcast over [P, F]
        return (p[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (p[..., 1] - o[..., 1]) * (
            q[..., 0] - o[..., 0]
        )

    inside = []
    for chunk in grid.split(4000):
        g = chunk[:, None, :]  # [P, 1, 2]
        d1, d2, d3 = cross(a, b, g), cross(b, c, g), cross(c, a, g)
        eps = 1e-9
        hit = ((d1 > eps) & (d2 > eps) & (d3 > eps)) | ((d1 < -eps) & (d2 < -eps) & (d3 < -eps))
        inside.append(hit.sum(1))
    inside = torch.cat(inside)
    assert int(inside.max()) == 1 and int((inside == 1).sum()) > 0.2 * len(grid)
    with pytest.raises(ValidationError, match="^pieces:"):
        unwrap_uv(s, pieces=0)


def test_degenerate_faces_are_dropped_or_refused_by_name():
    s = _sphere(1.0, subdivisions=2)  # 320 faces
    n = s.num_vertices
    # faces repeating a vertex cannot be collapsed away: dropped before decimating
    junk = torch.stack([torch.arange(50) % n, torch.arange(50) % n, (torch.arange(50) + 1) % n], 1)
    d = decimate(Mesh(s.vertices, torch.cat([s.faces, junk])), 200)
    assert d.num_faces <= 200 and bool((_edge_counts(d) == 2).all())
    with pytest.raises(ValidationError, match="^mesh.faces: expected faces with three distinct"):
        decimate(Mesh(s.vertices, junk), 10)
    # xatlas gives zero-area faces no UVs: dropped before unwrapping, refused when alone
    flat = torch.tensor([[0, 1, 1]])
    u = unwrap_uv(Mesh(s.vertices, torch.cat([s.faces, flat])))
    assert u.num_faces == s.num_faces and bool(torch.isfinite(u.uvs).all())
    with pytest.raises(
        ValidationError, match="^mesh.faces: expected at least one face of positive"
    ):
        unwrap_uv(Mesh(s.vertices, flat))


# ---------------------------------------------------------------------------------- the extra
@pytest.mark.parametrize(
    ("module", "call"),
    [
        (
            "mcubes",
            lambda: marching_cubes(torch.rand(4, 4, 4), torch.tensor([[0.0] * 3, [1.0] * 3]), 0.5),
        ),
        ("fast_simplification", lambda: decimate(_sphere(1.0), 50)),
        ("xatlas", lambda: unwrap_uv(_sphere(1.0, subdivisions=0))),
    ],
)
def test_missing_extra_names_it(monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(GS3DError, match=r"gs3d-core\[mesh\]"):
        call()


# ---------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_density_on_cuda_matches_cpu():
    g = _ball()
    cpu, b = gaussian_density(g, 48)
    gpu, b_gpu = gaussian_density(g.to("cuda"), 48)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(b_gpu.cpu(), b)
    mesh = gaussians_to_mesh(g.to("cuda"), resolution=48, faces=4000)
    assert mesh.vertices.device.type == "cuda" and mesh.num_faces <= 4000
    assert math.isclose(float(mesh.vertices.norm(dim=-1).mean()), 0.5, abs_tol=0.03)

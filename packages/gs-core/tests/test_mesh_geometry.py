"""Mesh validation and geometry, meshes to Gaussians, and geometry metrics against the
procedural world's exact geometry (CPU, seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gs_core.errors import FileFormatError, ValidationError
from gs_core.evaluation.geometry import (
    chamfer_fscore,
    gaussian_geometry_scores,
    grid_occupancy,
    mesh_geometry_scores,
    normal_consistency,
    volume_iou,
    winding_number,
)
from gs_core.mesh import Mesh
from gs_core.meshing.sampling import mesh_to_gaussians, sample_surface
from gs_core.procedural.surface import procedural_reference
from gs_core.rendering.projection import quat_to_rotmat

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def box_mesh(half=(0.5, 0.5, 0.5), center=(0.0, 0.0, 0.0)) -> Mesh:
    """Closed box, 12 triangles wound counter-clockwise seen from outside."""
    h = torch.tensor(half, dtype=torch.float64)
    s = torch.tensor(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float64
    )
    v = s * h + torch.tensor(center, dtype=torch.float64)
    # vertex index = 4 * (x > 0) + 2 * (y > 0) + (z > 0)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = []
    for a, b, c, d in quads:
        faces += [(a, b, c), (a, c, d)]
    return Mesh(v, torch.tensor(faces))


def sphere_mesh(r=1.0, n_lat=24, n_lon=48) -> Mesh:
    """UV sphere, outward winding."""
    verts = [[0.0, r, 0.0]]
    for i in range(1, n_lat):
        th = math.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * math.pi * j / n_lon
            verts.append(
                [r * math.sin(th) * math.cos(ph), r * math.cos(th), r * math.sin(th) * math.sin(ph)]
            )
    verts.append([0.0, -r, 0.0])
    bottom = len(verts) - 1

    def ring(i, j):
        return 1 + (i - 1) * n_lon + j % n_lon

    faces = []
    for j in range(n_lon):
        faces.append((0, ring(1, j + 1), ring(1, j)))
        faces.append((bottom, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)))
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j + 1), ring(i + 1, j)
            faces += [(a, b, c), (a, c, d)]
    return Mesh(torch.tensor(verts, dtype=torch.float64), torch.tensor(faces))


# ---------------------------------------------------------------------------- validation
def _tri():
    return torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), torch.tensor([[0, 1, 2]])


@pytest.mark.parametrize(
    "build, field",
    [
        (
            lambda v, f: Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)),
            "Mesh.vertices",
        ),
        (lambda v, f: Mesh(v, torch.zeros(0, 3, dtype=torch.long)), "Mesh.faces"),
        (lambda v, f: Mesh(v.index_fill(0, torch.tensor([1]), float("nan")), f), "Mesh.vertices"),
        (lambda v, f: Mesh(v.index_fill(0, torch.tensor([1]), float("inf")), f), "Mesh.vertices"),
        (lambda v, f: Mesh(v, torch.tensor([[0, 1, 3]])), "Mesh.faces"),
        (lambda v, f: Mesh(v, torch.tensor([[0, -1, 2]])), "Mesh.faces"),
        (lambda v, f: Mesh(v, f.float()), "Mesh.faces"),
        (lambda v, f: Mesh(v[:, :2], f), "Mesh.vertices"),
        (lambda v, f: Mesh(v.long(), f), "Mesh.vertices"),
        (lambda v, f: Mesh(v, f, vertex_colors=torch.rand(2, 3)), "Mesh.vertex_colors"),
        (
            lambda v, f: Mesh(v, f, vertex_colors=torch.ones(3, 3, dtype=torch.long)),
            "Mesh.vertex_colors",
        ),
        (lambda v, f: Mesh(v, f, uvs=torch.full((3, 2), float("nan"))), "Mesh.uvs"),
        (lambda v, f: Mesh(v, f, texture=torch.rand(4, 4, 3)), "Mesh.texture"),
        (lambda v, f: Mesh(v, f, uvs=torch.rand(3, 2), texture=torch.rand(4, 4)), "Mesh.texture"),
    ],
)
def test_validation_names_the_field(build, field):
    v, f = _tri()
    with pytest.raises(ValidationError) as e:
        build(v, f).validate()
    assert e.value.field == field


def test_empty_mesh_constructs_but_does_not_validate():
    m = Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long))
    assert m.num_faces == 0
    with pytest.raises(ValidationError, match="Mesh.vertices"):
        sample_surface(m, 10)


def test_validation_reads_its_values_back_once():
    # Each scalar read of a CUDA tensor synchronises the host with the GPU; validate() folds
    # every value check into one transfer (tolist), and scalar reads happen only on failure.
    from torch.utils._python_dispatch import TorchDispatchMode

    reads = []

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func._overloadpacket.__name__ in ("_local_scalar_dense", "item"):
                reads.append(func)
            return func(*args, **(kwargs or {}))

    v, f = _tri()
    mesh = Mesh(v, f, vertex_colors=torch.rand(3, 3), uvs=torch.rand(3, 2))
    with Count():
        mesh.validate()
    assert reads == []
    with pytest.raises(ValidationError, match="Mesh.uvs"):
        Mesh(v, f, vertex_colors=torch.rand(3, 3), uvs=torch.full((3, 2), float("inf")))


def test_construction_off_the_cpu_leaves_values_to_validate():
    # A meta tensor has no values: construction must not read them (as on a GPU), validate must.
    v = torch.empty(3, 3, device="meta")
    f = torch.empty(1, 3, dtype=torch.long, device="meta")
    mesh = Mesh(v, f)
    assert mesh.num_faces == 1
    with pytest.raises(ValidationError, match="Mesh.faces"):
        Mesh(v, f.float())
    with pytest.raises(NotImplementedError):
        mesh.validate()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_validation_on_cuda_synchronises_once():
    import warnings

    v, f = _tri()
    v, f = v.cuda(), f.cuda()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mesh = Mesh(v, f, vertex_colors=torch.rand(3, 3, device="cuda"))
            built = len(caught)
            mesh.validate()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert built == 0
    assert len(caught) == 1
    bad = Mesh(v, torch.tensor([[0, 1, 3]], device="cuda"))
    with pytest.raises(ValidationError, match="Mesh.faces"):
        bad.validate()


def test_degenerate_faces_are_counted_and_dropped():
    cube = box_mesh((1.0, 0.5, 0.25))
    v = torch.cat(
        [cube.vertices, torch.tensor([[2.0, 0, 0], [3.0, 0, 0], [4.0, 0, 0]], dtype=torch.float64)]
    )
    extra = torch.tensor([[8, 9, 10], [0, 0, 1]])  # collinear, repeated index
    m = Mesh(v, torch.cat([cube.faces, extra]))
    mask = m.degenerate_faces()
    assert int(mask.sum()) == 2 and mask[-2:].all()
    clean = m.drop_degenerate()
    assert clean.num_faces == 12 and clean.num_vertices == 11
    assert torch.equal(clean.faces, cube.faces)
    # box of extents 2 x 1 x 0.5
    assert float(clean.face_areas().sum()) == pytest.approx(2 * (2 * 1 + 2 * 0.5 + 1 * 0.5))
    with pytest.raises(ValidationError, match="Mesh.faces"):
        sample_surface(Mesh(v, extra), 5)


def test_face_and_vertex_normals_point_outwards():
    cube = box_mesh()
    centroids = cube.vertices[cube.faces].mean(1)
    n = cube.face_normals()
    # each face normal is the axis of its centroid's largest coordinate, pointing outward
    axis = centroids.abs().argmax(-1)
    expect = torch.nn.functional.one_hot(axis, 3).double() * centroids.sign()
    assert torch.allclose(n, expect)
    s = sphere_mesh()
    vn = s.vertex_normals()
    assert torch.allclose(vn.norm(dim=-1), torch.ones(s.num_vertices, dtype=torch.float64))
    cos = (vn * s.vertices / s.vertices.norm(dim=-1, keepdim=True)).sum(-1)
    assert float(cos.min()) > 0.999


# ---------------------------------------------------------------------------- sampling
def test_samples_are_area_uniform_and_on_their_faces():
    m = box_mesh((1.0, 0.5, 0.25))
    n = 60_000
    s = sample_surface(m, n, generator=torch.Generator().manual_seed(0))
    assert s.points.shape == (n, 3) and s.colors is None
    share = torch.bincount(s.face_idx, minlength=12).double() / n
    areas = m.face_areas()
    assert torch.allclose(share, areas / areas.sum(), atol=0.006)
    # on the face's plane, inside its triangle: on the box surface
    a = m.vertices[m.faces[s.face_idx, 0]]
    assert float(((s.points - a) * s.normals).sum(-1).abs().max()) < 1e-9
    q = s.points.abs() / torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)
    assert float(q.max()) <= 1 + 1e-9 and float((q.max(-1).values - 1).abs().max()) < 1e-9
    # uniform inside a face: the samples' mean is the centroid
    sel = s.face_idx == 0
    centroid = m.vertices[m.faces[0]].mean(0)
    assert torch.allclose(s.points[sel].mean(0), centroid, atol=0.02)


def test_sample_colors_from_vertex_colors_and_texture():
    v = torch.tensor([[0.1, 0.1, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])
    f = torch.tensor([[0, 1, 2]])
    # colours linear in position: barycentric interpolation reproduces them exactly
    s = sample_surface(
        Mesh(v, f, vertex_colors=v.clone()), 500, generator=torch.Generator().manual_seed(1)
    )
    assert torch.allclose(s.colors, s.points, atol=1e-6)
    # texture: red = u, green = v (v up: row 0 of the image is v = 1)
    H, W = 16, 32
    u_ramp = (torch.arange(W) + 0.5) / W
    v_ramp = 1 - (torch.arange(H) + 0.5) / H
    tex = torch.stack(
        [u_ramp.expand(H, W), v_ramp[:, None].expand(H, W), torch.zeros(H, W)], dim=-1
    )
    m = Mesh(v, f, uvs=v[:, :2].clone(), texture=tex)
    s = sample_surface(m, 500, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(s.colors[:, :2], s.points[:, :2], atol=1e-5)


def test_samples_carry_gradients_to_vertices():
    m = sphere_mesh(n_lat=6, n_lon=8)
    v = m.vertices.clone().requires_grad_(True)
    s = sample_surface(Mesh(v, m.faces), 100, generator=torch.Generator().manual_seed(0))
    s.points.sum().backward()
    # every sample is a convex combination: the weights per sample sum to one
    assert float(v.grad.sum()) == pytest.approx(3 * 100)


def test_mesh_to_gaussians_are_flat_in_the_face_plane():
    m = box_mesh((0.5, 0.5, 0.5))
    n = 2000
    g = mesh_to_gaussians(m, n, generator=torch.Generator().manual_seed(3))
    assert g.num_gaussians == n and g.batch_shape == ()
    sigma = 0.5 * math.sqrt(6.0 / n)
    assert torch.allclose(g.scales[:, :2], torch.full((n, 2), sigma, dtype=g.scales.dtype))
    assert torch.allclose(g.scales[:, 2], torch.full((n,), 0.01 * sigma, dtype=g.scales.dtype))
    # the smallest axis (local z) is the outward normal of the face the centre lies on
    z_axis = quat_to_rotmat(g.quats)[:, :, 2]
    axis = g.means.abs().argmax(-1)
    expect = torch.nn.functional.one_hot(axis, 3).to(g.means.dtype) * g.means.sign()
    assert torch.allclose(z_axis, expect, atol=1e-6)  # includes the -z faces (the flip branch)
    assert torch.allclose(g.colors, torch.full((n, 3), 0.5, dtype=g.means.dtype), atol=1e-6)
    assert torch.all(g.opacities == 1)


# ---------------------------------------------------------------------------- metrics
def _grid(k=4):
    r = torch.arange(k, dtype=torch.float32)
    return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)


def test_chamfer_fscore_identical_shifted_and_partial():
    g = _grid()
    same = chamfer_fscore(g, g)
    assert same["chamfer"] == 0 and same["fscore"] == 1
    shifted = chamfer_fscore(g + torch.tensor([0.1, 0, 0]), g, threshold=0.05)
    assert shifted["chamfer"] == pytest.approx(0.2, abs=1e-6)
    assert shifted["accuracy"] == pytest.approx(0.1, abs=1e-6)
    assert shifted["fscore"] == 0
    assert chamfer_fscore(g + torch.tensor([0.1, 0, 0]), g, threshold=0.2)["fscore"] == 1
    half = chamfer_fscore(g[g[:, 0] < 2], g, threshold=0.5)
    assert half["precision"] == 1 and half["recall"] == 0.5
    assert half["fscore"] == pytest.approx(2 / 3)
    assert half["completeness"] == pytest.approx(0.75)  # 16 points at 1, 16 at 2, 32 at 0
    with pytest.raises(ValidationError, match="pred_points"):
        chamfer_fscore(torch.zeros(0, 3), g)
    with pytest.raises(ValidationError, match="threshold"):
        chamfer_fscore(g, g, threshold=0)


def test_normal_consistency():
    g = _grid()
    n = torch.nn.functional.normalize(
        torch.randn(g.shape[0], 3, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    assert normal_consistency(g, n, g, n) == pytest.approx(1.0)
    assert normal_consistency(g, -n, g, n) == pytest.approx(1.0)
    assert normal_consistency(g, -n, g, n, oriented=True) == pytest.approx(-1.0)
    ex = torch.tensor([1.0, 0, 0]).expand_as(g)
    ey = torch.tensor([0, 1.0, 0]).expand_as(g)
    assert normal_consistency(g, ex, g, ey) == pytest.approx(0.0)


def _ball(c, r):
    c = torch.tensor(c, dtype=torch.float64)
    return lambda p: (p - c).norm(dim=-1) < r


def test_volume_iou_of_two_spheres_matches_the_closed_form():
    r, d = 0.4, 0.2
    lens = math.pi / 12 * (4 * r + d) * (2 * r - d) ** 2
    ball = 4 / 3 * math.pi * r**3
    expect = lens / (2 * ball - lens)
    got = volume_iou(_ball((-d / 2, 0, 0), r), _ball((d / 2, 0, 0), r), (-0.6, 0.6), 64)
    assert got == pytest.approx(expect, abs=0.01)


def test_volume_iou_of_meshes_through_the_winding_number():
    def cube(h):
        return lambda p: (p.abs() < h).all(-1)

    # faces on cell boundaries (cells of 0.05): the grid counts are exact
    assert volume_iou(box_mesh((0.3, 0.3, 0.3)), cube(0.3), (-0.5, 0.5), 20) == 1.0
    assert volume_iou(box_mesh((0.2, 0.2, 0.2)), cube(0.3), (-0.5, 0.5), 20) == pytest.approx(
        8 / 27
    )
    inverted = box_mesh((0.3, 0.3, 0.3))
    inverted = Mesh(inverted.vertices, inverted.faces.flip(-1))
    assert volume_iou(inverted, cube(0.3), (-0.5, 0.5), 20) == 1.0
    w = winding_number(box_mesh(), torch.tensor([[0.0, 0, 0], [0.2, 0.1, -0.3], [2.0, 0, 0]]))
    assert torch.allclose(w, torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64), atol=1e-9)
    with pytest.raises(ValidationError, match="volume_iou"):
        volume_iou(cube(0.01), cube(0.01), (-0.5, 0.5), 4)


def _cell_centres(lo, hi, r):
    ax = lo + (torch.arange(r, dtype=torch.float64) + 0.5) * (hi - lo) / r
    return torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1)


def test_grid_occupancy_of_a_sphere_is_the_exact_ball_but_near_the_surface():
    # Ray parity against the analytic ball: cells differ only within the tessellation's sag
    # of the sphere (the UV sphere is inscribed: its faces lie at most 1 - cos(pi / 24) inside).
    r, res = 0.4, 40
    occ = grid_occupancy(sphere_mesh(r, 24, 48), (-0.5, 0.5), res)
    dist = _cell_centres(-0.5, 0.5, res).norm(dim=-1)
    exact = dist < r
    sag = r * (1 - math.cos(math.pi / 24)) + 1e-9
    differs = occ != exact
    assert int(exact.sum()) > 1000
    assert bool((dist[differs] > r - sag).all() & (dist[differs] < r + 1e-9).all())
    assert float(differs.float().mean()) < 0.01
    # the same from the exact occupancy function through volume_iou
    assert volume_iou(sphere_mesh(r, 24, 48), lambda p: p.norm(dim=-1) < r, (-0.5, 0.5), res) > 0.95


def test_grid_occupancy_agrees_with_the_winding_number_and_survives_a_hole():
    # Two disjoint boxes with inverted winding. The larger one spans [-0.2, 0.3] on every axis,
    # so its faces' diagonals run exactly through columns of cell centres (cells of 0.05
    # centred at 0.025 + 0.05 k): a crossing there must count once, not twice or never.
    parts = [box_mesh((0.25,) * 3, (0.05,) * 3), box_mesh((0.1,) * 3, (-0.35, -0.3, -0.3))]
    v = torch.cat([parts[0].vertices, parts[1].vertices])
    f = torch.cat([parts[0].faces, parts[1].faces + 8]).flip(-1)
    mesh = Mesh(v, f)
    res = 20
    occ = grid_occupancy(mesh, (-0.5, 0.5), res)
    wn = winding_number(mesh, _cell_centres(-0.5, 0.5, res).reshape(-1, 3)).abs() > 0.5
    assert torch.equal(occ.reshape(-1), wn)
    # one face missing: the parity along one axis breaks, the majority of three does not
    holed = Mesh(v, f[1:])
    assert torch.equal(grid_occupancy(holed, (-0.5, 0.5), res), occ)
    with pytest.raises(ValidationError, match="resolution"):
        grid_occupancy(mesh, (-0.5, 0.5), 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_grid_occupancy_on_cuda_matches_cpu():
    mesh = sphere_mesh(0.45, 32, 64)
    cpu = grid_occupancy(mesh, (-0.5, 0.5), 48)
    gpu_mesh = Mesh(mesh.vertices.cuda(), mesh.faces.cuda())
    gpu = grid_occupancy(gpu_mesh, (-0.5, 0.5), 48)
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


# ---------------------------------------------------------------------------- procedural
@pytest.fixture(scope="module")
def mug_reference():
    return procedural_reference("mug_00000", seed=7, points=4000)


def _camera_rays_through(points: np.ndarray, center: np.ndarray):
    d = points - center
    dist = np.linalg.norm(d, axis=1)
    d = (d / dist[:, None]).astype(np.float32)
    o = np.broadcast_to(center.astype(np.float32), points.shape)
    return (o[:, 0].copy(), o[:, 1].copy(), o[:, 2].copy(), d[:, 0], d[:, 1], d[:, 2]), dist


def test_procedural_reference_points_lie_on_the_ray_cast_surface(mug_reference):
    from gs_core.procedural import cast

    ref = mug_reference
    assert ref.points.shape == (4000, 3) and ref.normals.shape == (4000, 3)
    assert np.abs(np.linalg.norm(ref.normals, axis=1) - 1).max() < 1e-4
    assert np.linalg.norm(ref.points, axis=1).max() <= ref.object.radius
    for center in (np.array([0.0, 0.3, 1.5]), np.array([-1.2, -0.4, -0.8])):
        rays, dist = _camera_rays_through(ref.points, center)
        hit = cast(ref.object, rays).t
        cos = ((center - ref.points) * ref.normals).sum(1) / dist
        # grazing rays are ill-conditioned in float32 (they may miss a tangent surface)
        clear = np.abs(cos) > 0.05
        # no sample floats in front of the ray-cast surface...
        assert np.all(hit[clear] <= dist[clear] + 1e-4)
        # ...the ones facing the camera and not hidden are exactly where the ray stops...
        visible = clear & (np.abs(hit - dist) < 1e-4)
        assert 0.2 < visible.mean() < 0.8
        # ...and none facing away is seen
        assert not np.any(visible & (cos < 0))
    # exact occupancy: just inside along the normal is inside, just outside is outside
    eps = 1e-3
    assert ref.contains(ref.points - eps * ref.normals).mean() > 0.99
    assert not ref.contains(ref.points + eps * ref.normals).any()


def test_procedural_reference_from_a_dataset_folder_matches_its_depth_maps(tmp_path):
    from gs_core.data.transforms import read_transforms
    from gs_core.data.views import _read_depth
    from gs_core.procedural import ProceduralConfig, cast, generate

    cfg = ProceduralConfig(
        objects=2,
        views=2,
        resolution=64,
        seed=3,
        points=0,
        normals=False,
        antialias=1,
        categories=["chair", "lamp"],
    )
    generate(cfg, tmp_path / "ds", workers=0, progress=False)
    obj_dir = tmp_path / "ds" / "lamp_00001"
    ref = procedural_reference(obj_dir, points=3000)
    same = procedural_reference("lamp_00001", seed=3, points=3000)
    assert np.array_equal(ref.points, same.points)
    record = read_transforms(obj_dir / "transforms.json")
    checked = 0
    for frame in record.frames:
        c2w = frame.c2w_gl @ GL_TO_CV
        depth = _read_depth(record, frame)
        fx, fy = frame.intrinsics["fl_x"], frame.intrinsics["fl_y"]
        cx, cy = frame.intrinsics["cx"], frame.intrinsics["cy"]
        rays, dist = _camera_rays_through(ref.points, c2w[:3, 3])
        visible = np.abs(cast(ref.object, rays).t - dist) < 1e-4
        cam = (ref.points[visible] - c2w[:3, 3]) @ c2w[:3, :3]  # camera frame (OpenCV)
        u = np.floor(fx * cam[:, 0] / cam[:, 2] + cx).astype(int)
        v = np.floor(fy * cam[:, 1] / cam[:, 2] + cy).astype(int)
        stored = depth[v.clip(0, 63), u.clip(0, 63)]
        err = np.abs(stored - cam[:, 2])
        # A pixel's depth is its centre's: a point elsewhere in it differs by the local slope
        # (or sees background at a silhouette). Another object's samples (the chair's) score
        # a median near 1 and under 5% within 0.05.
        assert np.median(err) < 0.03 and np.mean(err < 0.05) > 0.75
        checked += visible.sum()
    assert checked > 500
    with pytest.raises(ValidationError, match="seed"):
        procedural_reference("lamp_00001")
    with pytest.raises(FileFormatError):
        procedural_reference(tmp_path / "ds")


def test_scores_of_meshes_and_gaussians_against_a_reference():
    from gs_core.procedural import Ellipsoid, Part, ProceduralObject, Texture

    tex = Texture(kind="solid")
    obj = ProceduralObject(
        category="ball", parts=(Part("ball", Ellipsoid(radii=(0.4, 0.4, 0.4)), tex),), radius=0.5
    )
    ref = procedural_reference(obj, points=2000)
    sphere = sphere_mesh(0.4, 12, 24)
    s = mesh_geometry_scores(sphere, ref, samples=2000, iou_resolution=16)
    assert s["fscore"] > 0.99 and s["chamfer"] < 0.05  # about the sample spacing
    assert s["normal_consistency"] > 0.99 and s["volume_iou"] > 0.95
    bad = mesh_geometry_scores(sphere_mesh(0.25, 8, 16), ref, samples=2000, iou_resolution=16)
    assert bad["fscore"] < 0.2 and bad["chamfer"] > 0.2
    assert bad["volume_iou"] == pytest.approx((0.25 / 0.4) ** 3, abs=0.08)
    g = mesh_to_gaussians(sphere, 2000, generator=torch.Generator().manual_seed(0))
    gs = gaussian_geometry_scores(g, ref)
    assert gs["fscore"] > 0.99 and gs["normal_consistency"] > 0.99

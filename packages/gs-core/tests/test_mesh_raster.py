"""The differentiable mesh rasteriser: coverage, depth, normals, interpolation, textures,
silhouette gradients and bad input, on CPU at small resolutions (plus one GPU parity test)."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core import Cameras, Mesh
from gs_core.errors import ValidationError
from gs_core.rendering.mesh_antialias import antialias, edge_topology
from gs_core.rendering.mesh_raster import interpolate, project_vertices, rasterize
from gs_core.rendering.mesh_render import render_mesh
from gs_core.rendering.mesh_texture import texture

CUBE_V = torch.tensor(
    [[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]
)  # index = 4 ix + 2 iy + iz
CUBE_F = torch.tensor(
    [
        [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
        [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
    ]
)  # fmt: skip


def front_camera(res=64, radius=3.0, fov=40.0, dtype=torch.float32):
    return Cameras.orbit([0.0], 0.0, radius=radius, fov_deg=fov, width=res, height=res, dtype=dtype)


def sphere(r=0.8, subdivisions=3):
    """Icosphere of radius ``r``, outward winding: ``verts [V, 3]``, ``faces [20 * 4^s, 3]``."""
    t = (1 + 5**0.5) / 2
    v = torch.tensor(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=torch.float64,
    )  # fmt: skip
    f = torch.tensor(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
         [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
         [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    )  # fmt: skip
    for _ in range(subdivisions):
        e = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(1).values
        uniq, inv = torch.unique(e, dim=0, return_inverse=True)
        mid = len(v) + inv.reshape(3, -1)  # midpoints of edges 01, 12, 20
        v = torch.cat([v, (v[uniq[:, 0]] + v[uniq[:, 1]]) / 2])
        a, b, c = f.unbind(1)
        m01, m12, m20 = mid
        f = torch.cat(
            [
                torch.stack(x, 1)
                for x in ((a, m01, m20), (b, m12, m01), (c, m20, m12), (m01, m12, m20))
            ]
        )
    v = v / v.norm(dim=-1, keepdim=True) * r
    return v.float(), f


# ---------------------------------------------------------------------- geometry


def test_cube_mask_depth_normals_match_closed_forms():
    cams = front_camera()
    f = float(cams.Ks[0, 0, 0])
    out = render_mesh(Mesh(CUBE_V, CUBE_F), cams)
    # Seen head-on, only the z = +0.5 face is visible: a square of side f / 2.5 pixels.
    area = (f / 2.5) ** 2
    assert abs(float(out.alpha.sum()) - area) < 0.005 * area
    raw = rasterize(CUBE_V, CUBE_F, cams)
    side = f / 2.5
    lo, hi = 32 - side / 2, 32 + side / 2
    n_centres = math.floor(hi - 0.5) - math.ceil(lo - 0.5) + 1
    assert int((raw.tri_id >= 0).sum()) == n_centres**2  # exact pixel-centre coverage
    assert float(out.depth[0, 32, 32, 0]) == pytest.approx(2.5, abs=1e-5)
    assert torch.allclose(out.normal[0, 32, 32], torch.tensor([0.0, 0.0, 1.0]))
    side_cams = Cameras.orbit([90.0], 0.0, radius=3.0, fov_deg=40, width=64, height=64)
    n = render_mesh(Mesh(CUBE_V, CUBE_F), side_cams, attributes=("normal",)).normal
    assert torch.allclose(n[0, 32, 32], torch.tensor([1.0, 0.0, 0.0]))  # camera on +x
    assert out.rgb.shape == (1, 64, 64, 3) and out.depth.shape == (1, 64, 64, 1)
    assert float(out.rgb[0, 0, 0].min()) == 1.0  # white background in a corner


def test_sphere_mask_area_depth_and_normals():
    r, d = 0.8, 3.0
    v, faces = sphere(r)
    cams = front_camera(res=64, radius=d)
    f = float(cams.Ks[0, 0, 0])
    out = render_mesh(Mesh(v, faces), cams, normals="vertex")
    # A sphere's silhouette from distance d is a circle of angular radius asin(r / d).
    analytic = math.pi * (f * math.tan(math.asin(r / d))) ** 2
    assert abs(float(out.alpha.sum()) - analytic) < 0.03 * analytic  # icosphere is inscribed
    assert float(out.depth[0, 32, 32, 0]) == pytest.approx(d - r, rel=0.01)
    # Normals point at the camera in the centre and sideways at the rim.
    assert float(out.normal[0, 32, 32, 2]) > 0.99
    o, dirs = cams.rays()
    hit = out.alpha[0, ..., 0] > 0.999
    # The camera looks along world -z, so camera depth is the ray length times -dir.z.
    pts = o[0] + dirs[0] * out.depth[0] / -dirs[0, ..., 2:3]
    cos = (out.normal[0] * torch.nn.functional.normalize(pts, dim=-1)).sum(-1)[hit]
    assert float(cos.min()) > 0.97  # sphere normals are radial


def test_perspective_correct_interpolation_hits_the_plane():
    # A large triangle slanted in depth: interpolated world positions must lie on the ray
    # through each pixel centre (screen-linear interpolation would not).
    v = torch.tensor([[-2.0, -1.5, -1.5], [2.0, -1.5, 1.0], [0.0, 2.0, -0.5]])
    faces = torch.tensor([[0, 1, 2]])
    cams = front_camera(res=32, radius=4.0, dtype=torch.float64)
    rast = rasterize(v.double(), faces, cams)
    pos = interpolate(v.double(), rast, faces)[0]
    hit = rast.tri_id[0] >= 0
    assert int(hit.sum()) > 100
    o, dirs = cams.rays()
    rel = pos - o[0]
    cross = torch.linalg.cross(rel, dirs[0], dim=-1).norm(dim=-1)
    assert float(cross[hit].max()) < 1e-9
    # Depth is camera-space z of that point.
    z = (cams.viewmats[0, :3, :3] @ pos[..., None])[..., 2, 0] + cams.viewmats[0, 2, 3]
    assert torch.allclose(rast.depth[0][hit], z[hit], atol=1e-9)
    assert torch.allclose(rast.bary[0][hit].sum(-1), torch.ones(()).double())


def test_depth_test_keeps_the_nearer_triangle():
    near = torch.tensor([[-1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [0.0, 1.0, 0.5]])
    far = near.clone()
    far[:, 2] = -0.5
    v = torch.cat([far, near])
    for faces in (torch.tensor([[0, 1, 2], [3, 4, 5]]), torch.tensor([[3, 4, 5], [0, 1, 2]])):
        rast = rasterize(v, faces, front_camera(res=16))
        near_id = int((faces[:, 0] == 3).nonzero())
        assert int(rast.tri_id[0, 8, 8]) == near_id
        assert float(rast.depth[0, 8, 8]) == pytest.approx(2.5)


def test_shared_edges_are_watertight():
    # A fan of thin triangles around the image centre: no pixel inside the disc is missed.
    n = 37
    ang = torch.arange(n + 1) * (2 * math.pi / n)
    rim = torch.stack([torch.cos(ang), torch.sin(ang), torch.zeros_like(ang)], -1)[:-1]
    v = torch.cat([torch.zeros(1, 3), rim])
    faces = torch.stack([torch.zeros(n), 1 + torch.arange(n), 1 + (torch.arange(n) + 1) % n], -1)
    rast = rasterize(v, faces.long(), front_camera(res=63))
    tri = rast.tri_id[0]
    ys, xs = torch.meshgrid(torch.arange(63) + 0.5, torch.arange(63) + 0.5, indexing="ij")
    inner = (xs - 31.5).square() + (ys - 31.5).square() < 15.0**2
    assert bool((tri[inner] >= 0).all())


def test_batched_meshes_match_single_renders():
    v = torch.stack([CUBE_V, CUBE_V * 0.5 + 0.1])
    cams = Cameras.orbit([0.0, 40.0, 200.0], 20.0, radius=3.0, width=24, height=20)
    rast = rasterize(v, CUBE_F, cams)
    assert rast.tri_id.shape == (2, 3, 20, 24) and rast.bary.shape == (2, 3, 20, 24, 3)
    for m in range(2):
        single = rasterize(v[m], CUBE_F, cams)
        assert torch.equal(single.tri_id, rast.tri_id[m])
        assert torch.allclose(single.depth, rast.depth[m])
    # Per-mesh attributes follow the batch.
    col = torch.stack([torch.zeros(8, 3), torch.ones(8, 3)])
    img = interpolate(col, rast, CUBE_F)
    assert float(img[0].max()) == 0.0
    assert torch.allclose(img[1][rast.tri_id[1] >= 0], torch.ones(()))


def test_small_chunks_give_the_same_image():
    v, faces = sphere(subdivisions=2)
    cams = front_camera(res=32)
    a = rasterize(v, faces, cams)
    b = rasterize(v, faces, cams, chunk=7)
    assert torch.equal(a.tri_id, b.tri_id) and torch.equal(a.depth, b.depth)


# ---------------------------------------------------------------------- gradients


def test_interpolate_gradcheck():
    v = torch.tensor([[-1.0, -1.0, 0.2], [1.0, -1.2, 0.0], [0.1, 1.0, -0.3], [1.2, 1.1, 0.1]])
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    rast = rasterize(v.double(), faces, front_camera(res=6, dtype=torch.float64))
    attr = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate(a, rast, faces), (attr,))
    corner = torch.rand(2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: interpolate(a, rast), (corner,))


@pytest.mark.parametrize("mip", [False, True])
def test_texture_gradcheck(mip):
    tex = torch.rand(8, 8, 2, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(1, 4, 4, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: texture(t, uv, mip=mip), (tex,))


def test_texture_orientation_and_mip_level():
    tex = torch.zeros(4, 4, 1)
    tex[0, 3] = 1.0  # first image row = v near 1, last column = u near 1
    uv = torch.tensor([[[[0.875, 0.875]]]])
    assert float(texture(tex, uv, mip=False)) == pytest.approx(1.0)
    # A 64-texel checkerboard squeezed into 4 x 4 pixels averages to grey with mips only.
    checker = ((torch.arange(64)[:, None] + torch.arange(64)[None]) % 2).float()[..., None]
    g = (torch.arange(4) + 0.5) / 4
    uv = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1)[None] + 0.5 / 64  # texel centres
    assert float((texture(checker, uv, mip=True) - 0.5).abs().max()) < 0.05
    assert float((texture(checker, uv, mip=False) - 0.5).abs().min()) == pytest.approx(0.5)


def test_texture_gradients_through_render_mesh():
    v = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 1.0, 0.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    uvs = (v[:, :2] + 1) / 2
    tex = torch.full((8, 8, 3), 0.25, requires_grad=True)
    out = render_mesh(Mesh(v, faces, uvs=uvs, texture=tex), front_camera(res=16), background=0.0)
    assert float(out.rgb[0, 8, 8, 0].detach()) == pytest.approx(0.25)
    out.rgb.sum().backward()
    assert float(tex.grad.sum()) == pytest.approx(float(out.alpha.detach().sum()) * 3, rel=0.02)


def _triangle_mask_sum(v, cams):
    faces = torch.tensor([[0, 1, 2]])
    return render_mesh(Mesh(v, faces), cams, attributes=("alpha",)).alpha.sum()


def test_antialias_moves_a_silhouette_vertex_like_finite_differences():
    cams = front_camera(res=48)
    v0 = torch.tensor([[-0.6, -0.5, 0.0], [0.7, -0.4, 0.0], [0.1, 0.6, 0.0]])
    v = v0.clone().requires_grad_()
    _triangle_mask_sum(v, cams).backward()
    h = 0.02
    for i, k in ((2, 0), (2, 1), (1, 0)):
        dp, dm = v0.clone(), v0.clone()
        dp[i, k] += h
        dm[i, k] -= h
        fd = (float(_triangle_mask_sum(dp, cams)) - float(_triangle_mask_sum(dm, cams))) / (2 * h)
        g = float(v.grad[i, k])
        assert g * fd > 0 and abs(g - fd) < 0.15 * abs(fd) + 1.0, (i, k, g, fd)
    # Against the closed form: moving the apex upwards grows the screen triangle by half its
    # base times the apex's screen displacement.
    xy, _ = project_vertices(v0, cams)
    base = float(xy[0, 1, 0] - xy[0, 0, 0])
    f = float(cams.Ks[0, 0, 0])
    closed = 0.5 * base * f / 3.0  # d(screen y)/d(world y) = f / z at z = 3
    assert abs(float(v.grad[2, 1]) - closed) < 0.1 * closed  # world y up = screen y down


def test_mask_loss_scales_the_cube_like_its_area():
    cams = front_camera()
    f = float(cams.Ks[0, 0, 0])
    v = CUBE_V.clone().requires_grad_()
    render_mesh(Mesh(v, CUBE_F), cams, attributes=("alpha",)).alpha.sum().backward()
    ds = float((v.grad * CUBE_V).sum())  # derivative w.r.t. a uniform scale s at s = 1

    def area(s):
        return (f * s / (3 - 0.5 * s)) ** 2

    exact = (area(1 + 1e-4) - area(1 - 1e-4)) / 2e-4
    assert abs(ds - exact) < 0.03 * exact


def test_depth_loss_moves_the_surface():
    cams = front_camera(res=32)
    v = CUBE_V.clone().requires_grad_()
    out = render_mesh(Mesh(v, CUBE_F), cams, attributes=("depth",), antialias=False)
    out.depth[0, 12:20, 12:20].sum().backward()
    # Interior depth of the front face depends only on its vertices' z (z = +0.5, index iz = 1).
    front = CUBE_V[:, 2] > 0
    assert bool((v.grad[front, 2] < 0).all() | (v.grad[front, 2] <= 0).all())
    assert float(v.grad[front, 2].sum()) == pytest.approx(-64.0, rel=1e-4)
    assert float(v.grad[~front].abs().sum()) == 0.0


def test_antialias_keeps_interior_edges_and_topology():
    opp = edge_topology(CUBE_F)
    assert bool((opp >= 0).all())  # a closed cube has no boundary edges
    assert bool((edge_topology(torch.tensor([[0, 1, 2]])) == -1).all())
    # Colours that differ between the front face's two triangles are not blended across their
    # shared diagonal: it is not a silhouette.
    cams = front_camera()
    rast = rasterize(CUBE_V, CUBE_F, cams)
    col = (rast.tri_id[..., None] % 2).float()
    xy, _ = project_vertices(CUBE_V, cams)
    aa = antialias(col, rast, xy, CUBE_F, opp)
    inside = rast.tri_id[0, 20:44, 20:44] >= 0
    assert torch.equal(aa[0, 20:44, 20:44][inside], col[0, 20:44, 20:44][inside])


# ---------------------------------------------------------------------- bad input


def test_bad_meshes_raise_one_clear_error():
    cams = front_camera(res=8)
    with pytest.raises(ValidationError, match="faces: expected at least one face"):
        rasterize(CUBE_V, torch.zeros(0, 3, dtype=torch.long), cams)
    with pytest.raises(ValidationError, match="verts: expected at least one vertex"):
        rasterize(torch.zeros(0, 3), CUBE_F, cams)
    nan = CUBE_V.clone()
    nan[3, 1] = float("nan")
    with pytest.raises(ValidationError, match="verts: expected finite values"):
        rasterize(nan, CUBE_F, cams)
    with pytest.raises(ValidationError, match=r"faces: expected indices in \[0, 8\)"):
        rasterize(CUBE_V, CUBE_F + 1, cams)
    with pytest.raises(ValidationError, match="faces: expected an integer tensor"):
        rasterize(CUBE_V, CUBE_F.float(), cams)
    with pytest.raises(ValidationError, match="cameras"):
        batch3 = Cameras(cams.viewmats.expand(3, 1, 4, 4), cams.Ks.expand(3, 1, 3, 3), 8, 8)
        rasterize(CUBE_V.expand(2, 8, 3), CUBE_F, batch3)  # 2 meshes, 3 camera sets
    with pytest.raises(ValidationError, match="attributes"):
        render_mesh(Mesh(CUBE_V, CUBE_F), cams, attributes=("colour",))
    with pytest.raises(ValidationError, match="mesh"):
        render_mesh(CUBE_V, cams)


def test_interpolate_and_antialias_refuse_indices_past_their_inputs():
    cams = front_camera(res=8)
    rast = rasterize(CUBE_V, CUBE_F, cams)
    with pytest.raises(ValidationError, match=r"^faces: expected indices in \[0, 5\)"):
        interpolate(torch.rand(5, 3), rast, CUBE_F)  # 5 colours for 8 vertices
    with pytest.raises(ValidationError, match="^attr: expected per-corner values of at least"):
        interpolate(torch.rand(2, 3, 3), rast)  # 2 faces' corners for 12 faces
    xy, _ = project_vertices(CUBE_V, cams)
    col = torch.rand(1, 8, 8, 3)
    with pytest.raises(ValidationError, match=r"^faces: expected indices in \[0, 6\)"):
        antialias(col, rast, xy[:, :6], CUBE_F)
    with pytest.raises(ValidationError, match="^topology"):
        antialias(col, rast, xy, CUBE_F, edge_topology(CUBE_F)[:3])


def test_degenerate_and_behind_camera_faces_are_skipped():
    cams = front_camera(res=32)
    base = rasterize(CUBE_V, CUBE_F, cams)
    v = torch.cat([CUBE_V, torch.tensor([[0.0, 0.0, 2.9], [0.0, 0.0, 5.0]])])
    extra = torch.tensor([[0, 0, 1], [2, 2, 2], [1, 3, 3], [8, 9, 9], [8, 0, 1]])
    rast = rasterize(v, torch.cat([CUBE_F, extra]), cams)
    # Zero-area faces and faces reaching behind the near plane (vertex 9 is behind the camera
    # at z = 3) draw nothing; face [8, 0, 1] is in front of the near plane and may draw.
    drawn = set(rast.tri_id.unique().tolist()) - {-1}
    assert drawn.isdisjoint({12, 13, 14, 15})
    keep = rast.tri_id < 12
    assert torch.equal(rast.tri_id[keep], base.tri_id[keep])
    assert bool(torch.isfinite(rast.bary).all()) and bool(torch.isfinite(rast.depth).all())


def test_empty_view_renders_background():
    cams = Cameras.orbit([180.0], 0.0, radius=3.0, width=8, height=8, target=(0.0, 0.0, 10.0))
    out = render_mesh(Mesh(CUBE_V, CUBE_F), cams, background=(0.1, 0.2, 0.3))
    assert float(out.alpha.sum()) == 0.0
    assert torch.allclose(out.rgb[0, 4, 4], torch.tensor([0.1, 0.2, 0.3]))


# ---------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_cuda_matches_cpu():
    v, faces = sphere(subdivisions=3)
    cams = Cameras.orbit([0.0, 90.0], 20.0, radius=3.0, width=64, height=64)
    col = torch.rand(v.shape[0], 3)
    ref = render_mesh(Mesh(v, faces, vertex_colors=col), cams)
    vc = v.cuda().requires_grad_()
    out = render_mesh(Mesh(vc, faces.cuda(), vertex_colors=col.cuda()), cams.to("cuda"))
    assert torch.equal(out.meta["rast"].tri_id.cpu(), ref.meta["rast"].tri_id)
    for name in ("alpha", "depth"):
        assert torch.allclose(getattr(out, name).cpu(), getattr(ref, name), atol=1e-4), name
    # Pixel centres lying on an edge to within rounding may pick another exit edge in
    # antialias on another device; that may only touch a few pixels.
    for name in ("rgb", "normal"):
        off = (getattr(out, name).detach().cpu() - getattr(ref, name)).abs().amax(-1) > 1e-4
        assert float(off.float().mean()) < 0.005, name
    out.alpha.sum().backward()
    assert bool(torch.isfinite(vc.grad).all()) and float(vc.grad.abs().sum()) > 0


@pytest.mark.gpu
@pytest.mark.parametrize("scene", ["cube", "sphere", "soup"])
def test_triton_zbuffer_matches_torch_zbuffer(scene, monkeypatch):
    pytest.importorskip("triton")
    from gs_core.rendering import mesh_raster

    gen = torch.Generator().manual_seed(0)
    if scene == "cube":
        v, f = CUBE_V, CUBE_F
    elif scene == "sphere":
        v, f = sphere(subdivisions=4)
    else:  # interpenetrating triangles of all sizes, some crossing the image border
        v = (torch.rand(900, 3, generator=gen) - 0.5) * 1.6
        f = torch.randperm(900, generator=gen).reshape(300, 3)
    cams = Cameras.orbit([0.0, 100.0, 215.0], 25.0, radius=2.5, width=96, height=80)
    v, f, cams = v.cuda(), f.cuda(), cams.to("cuda")
    fast = rasterize(v, f, cams)
    monkeypatch.setattr(mesh_raster, "_TRITON_ZBUFFER", False)
    ref = rasterize(v, f, cams)
    assert float((ref.tri_id >= 0).float().mean()) > 0.05
    assert torch.equal(fast.tri_id, ref.tri_id)
    assert torch.equal(fast.depth, ref.depth)


def test_edge_topology_is_cached_per_unmodified_faces_tensor():
    from gs_core.rendering.mesh_antialias import cached_edge_topology

    f = CUBE_F.clone()
    t1 = cached_edge_topology(f)
    assert cached_edge_topology(f) is t1
    assert torch.equal(t1, edge_topology(f))
    f[[0, 1]] = f[[1, 0]]  # in place: the cached entry must not be reused
    t2 = cached_edge_topology(f)
    assert t2 is not t1 and torch.equal(t2, edge_topology(f))


# ------------------------------------------------------------ Triton kernels vs the torch path


def _render_with_grads(v, f, cams, col, weights_seed=1):
    x, c = v.clone().requires_grad_(), col.clone().requires_grad_()
    out = render_mesh(Mesh(x, f, vertex_colors=c), cams)
    w = torch.rand(out.rgb.shape, generator=torch.Generator().manual_seed(weights_seed))
    w = w.to(out.rgb.device)
    loss = (out.rgb * w).sum() + out.alpha.sum() + 0.3 * out.depth.sum() + (out.normal * w).sum()
    loss.backward()
    return out, x.grad, c.grad


def _set_kernels(on: bool) -> None:
    from gs_core.rendering import mesh_antialias, mesh_raster

    mesh_raster._TRITON_ZBUFFER = mesh_raster._TRITON_BARY = on
    mesh_antialias._TRITON_ANTIALIAS = on


def compare_kernels_on_cpu(scene: str) -> None:
    """The Triton kernels, run by Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``
    set before Triton is imported), against the torch path processing every pixel as on a GPU.
    Run in a subprocess by the test below."""
    from gs_core.rendering import mesh_antialias, mesh_raster

    def use(xy, switch):
        return switch and xy.dtype == torch.float32

    for mod in (mesh_raster, mesh_antialias):
        mod._use_triton = use
        mod._dense = lambda t: True
    gen = torch.Generator().manual_seed(0)
    if scene == "sphere":
        v, f = sphere(subdivisions=1)
    else:  # interpenetrating triangles of all sizes, some crossing the image border
        v = (torch.rand(90, 3, generator=gen) - 0.5) * 1.6
        f = torch.randperm(90, generator=gen).reshape(30, 3)
    cams = Cameras.orbit([0.0, 100.0], 25.0, radius=2.5, width=24, height=20)
    col = torch.rand(v.shape[0], 3, generator=gen)
    xy, z = project_vertices(v, cams)
    xy, z = xy.reshape(-1, v.shape[0], 2), z.reshape(-1, v.shape[0])
    keys = mesh_raster._zbuffer(xy, z, f, 20, 24, 0.01, mesh_raster.DEFAULT_CHUNK)
    fast, gv_fast, gc_fast = _render_with_grads(v, f, cams, col)
    _set_kernels(False)
    ref_keys = mesh_raster._zbuffer(xy, z, f, 20, 24, 0.01, mesh_raster.DEFAULT_CHUNK)
    ref, gv, gc = _render_with_grads(v, f, cams, col)
    assert torch.equal(keys, ref_keys)  # the z-buffer is bit-exact
    assert float((ref.alpha > 0).float().mean()) > 0.1
    assert torch.equal(fast.meta["rast"].tri_id, ref.meta["rast"].tri_id)
    for name in ("rgb", "alpha", "depth", "normal"):
        assert torch.allclose(getattr(fast, name), getattr(ref, name), atol=1e-5), name
    assert torch.allclose(fast.meta["rast"].bary, ref.meta["rast"].bary, atol=1e-5)
    assert torch.allclose(gv_fast, gv, rtol=1e-4, atol=1e-4 * float(gv.abs().max()))
    assert torch.allclose(gc_fast, gc, rtol=1e-4, atol=1e-5)


def test_triton_kernels_match_the_torch_path():
    # Triton's interpreter must be chosen before Triton is first imported, hence a process
    # of its own (one for both scenes: importing torch is most of its time).
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import test_mesh_raster as t; [t.compare_kernels_on_cpu(s) for s in sys.argv[2:]]"
    )
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), "sphere", "soup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.gpu
@pytest.mark.parametrize("scene", ["sphere", "soup"])
def test_cuda_kernels_match_the_torch_path(scene, monkeypatch):
    pytest.importorskip("triton")
    from gs_core.rendering import mesh_antialias, mesh_raster

    gen = torch.Generator().manual_seed(0)
    if scene == "sphere":
        v, f = sphere(subdivisions=4)
    else:
        v = (torch.rand(900, 3, generator=gen) - 0.5) * 1.6
        f = torch.randperm(900, generator=gen).reshape(300, 3)
    cams = Cameras.orbit([0.0, 100.0, 215.0], 25.0, radius=2.5, width=96, height=80).to("cuda")
    col = torch.rand(v.shape[0], 3, generator=gen).cuda()
    v, f = v.cuda(), f.cuda()
    fast, gv_fast, gc_fast = _render_with_grads(v, f, cams, col)
    for switch in ("_TRITON_ZBUFFER", "_TRITON_BARY"):
        monkeypatch.setattr(mesh_raster, switch, False)
    monkeypatch.setattr(mesh_antialias, "_TRITON_ANTIALIAS", False)
    ref, gv, gc = _render_with_grads(v, f, cams, col)
    assert float((ref.alpha > 0).float().mean()) > 0.05
    assert torch.equal(fast.meta["rast"].tri_id, ref.meta["rast"].tri_id)
    # The kernels round as torch does, but sums may be ordered differently (and the GPU's
    # atomics add in any order): a pixel pair whose exit edges tie to within that rounding may
    # decide differently, which moves a few pixels and the gradients of their vertices.
    for name in ("rgb", "alpha", "depth", "normal"):
        off = (getattr(fast, name) - getattr(ref, name)).abs().amax(-1) > 1e-4
        assert float(off.float().mean()) < 1e-3, name
    for a, b in ((gv_fast, gv), (gc_fast, gc)):
        assert float((a - b).norm() / b.norm()) < 1e-2


@pytest.mark.gpu
@pytest.mark.parametrize("kernels", [True, False])
def test_cuda_render_never_waits_for_the_gpu(kernels, monkeypatch):
    # The GPU path queues its launches without a host sync (no nonzero, no .item()), so it
    # runs ahead of the GPU and can be recorded in a CUDA graph; torch raises on any sync.
    # Without kernels: the torch barycentrics and antialiasing (the z-buffer is always the
    # kernel on CUDA; its torch reference chunks by candidate counts, which needs the host).
    from gs_core.rendering import mesh_antialias, mesh_raster
    from gs_core.rendering.mesh_render import _shade

    monkeypatch.setattr(mesh_raster, "_TRITON_BARY", kernels)
    monkeypatch.setattr(mesh_antialias, "_TRITON_ANTIALIAS", kernels)
    v, f = sphere(subdivisions=3)
    v, f = v.cuda(), f.cuda()
    cams = Cameras.orbit([0.0, 120.0], 10.0, radius=2.5, width=48, height=40).to("cuda")
    topo = edge_topology(f)
    uvs = torch.rand(v.shape[0], 2, device="cuda")

    def step():
        x = v.clone().requires_grad_()
        tex = torch.rand(16, 16, 3, device="cuda", requires_grad=True)
        chans, _, _ = _shade(
            x, f, cams.viewmats, cams.Ks, 48, 40, vertex_colors=None, uvs=uvs, tex=tex,
            bg=torch.ones(2, 3, device="cuda"), attrs=("rgb", "alpha", "depth", "normal"),
            antialias=True, normals="vertex", mip=True, near_plane=0.01, topology=topo,
        )  # fmt: skip
        sum(c.sum() for c in chans.values()).backward()
        return x.grad

    step()  # compiles the kernels
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        g = step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0

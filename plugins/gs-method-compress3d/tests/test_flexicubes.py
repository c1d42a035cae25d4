"""FlexiCubes: the generated Dual Marching Cubes tables and the differentiable extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gs_core.errors import ValidationError
from gs_method_compress3d import flexicubes_tables as T
from gs_method_compress3d.flexicubes import (
    DEFORM_BOUND,
    flexicubes_mesh,
    flexicubes_mesh_batch,
    grid_cubes,
    grid_vertices,
)

# --- tables -----------------------------------------------------------------------------------


def _amb_mask(config: int) -> int:
    return sum(1 << f for f in range(6) if T.is_ambiguous_face(config, f))


def test_tables_partition_crossed_edges_into_loops():
    tb = T.dual_tables()
    assert tb.edge_group.shape == (256 * 64, 12) and tb.num_groups.max() == T.MAX_GROUPS
    for config in range(256):
        crossed = T.crossed_edges(config)
        assert (tb.crossed[config] == crossed).all()
        for flip_mask in range(64):
            g = tb.edge_group[config + 256 * flip_mask]
            # Crossed edges, and only they, belong to a patch; patch ids are 0..n-1.
            assert ((g >= 0) == crossed).all()
            n = int(tb.num_groups[config + 256 * flip_mask])
            assert sorted(set(g[g >= 0].tolist())) == list(range(n))
            # Every patch is a closed loop over at least three faces.
            assert all((g == k).sum() >= 3 for k in range(n))


def test_tables_known_cases():
    tb = T.dual_tables()
    assert tb.num_groups[0] == 0 and tb.num_groups[255] == 0
    for corner in range(8):
        g = tb.edge_group[1 << corner]
        # One inside corner: its three incident edges, one patch.
        incident = [e for e in range(12) if corner in T.EDGE_CORNERS[e]]
        assert sorted(np.nonzero(g >= 0)[0].tolist()) == incident and g.max() == 0
    # Two diagonal-opposite corners inside (body diagonal): two separate triangles.
    assert tb.num_groups[(1 << 0) | (1 << 7)] == 2
    # Four non-adjacent corners (0, 3, 5, 6): four corner patches.
    assert tb.num_groups[0b01101001] == 4
    # Two corners sharing an edge: one quad patch over four edges.
    assert tb.num_groups[0b11] == 1 and (tb.edge_group[0b11] >= 0).sum() == 4


def test_tables_complementary_configurations_agree():
    # Inverting every sign swaps inside and outside, so the same loops come out when every
    # ambiguous face is resolved the other way.
    for config in range(256):
        amb = _amb_mask(config)
        assert amb == _amb_mask(255 - config)
        for flip_mask in range(0, 64, 7):
            a = T.edge_groups(config, flip_mask)
            b = T.edge_groups(255 - config, flip_mask ^ amb)
            assert (a == b).all(), (config, flip_mask)


def test_tables_face_pairing_depends_on_the_face_only():
    # Two cubes sharing a face pair its crossed edges the same way whatever their other corners.
    for config in range(256):
        for face in range(6):
            corners = T.FACE_CORNERS[face]
            for other in (0, 255, config ^ 0b10100101):
                mixed = config
                for c in range(8):
                    if c not in corners:
                        mixed = (mixed & ~(1 << c)) | (other & (1 << c))
                for flipped in (False, True):
                    assert T.face_segments(config, face, flipped) == T.face_segments(
                        mixed, face, flipped
                    )


def test_tables_double_pass_resolution():
    tb = T.dual_tables()
    configs = np.nonzero(tb.double_pass.any(1))[0]
    # Inside corners separated by default: only five or six inside corners can wrap around.
    assert len(configs) == 36
    assert all(bin(int(c)).count("1") in (5, 6) for c in configs)
    assert (tb.double_pass[configs].sum(1) == 1).all()
    for config in range(256):
        dp = tb.double_pass[config]
        assert not (dp & ~tb.ambiguous_faces[config]).any()
        mask = sum(1 << f for f in range(6) if dp[f])
        sub = mask
        while True:
            # Flipping any set of double-pass faces removes the double pass there and never
            # creates one on another face.
            after = T.double_pass_faces(int(config), sub)
            for f in range(6):
                if after[f]:
                    assert dp[f] and not (sub >> f) & 1
            if sub == 0:
                break
            sub = (sub - 1) & mask
    for config in configs:
        face = int(np.nonzero(tb.double_pass[config])[0][0])
        assert T.edge_groups(int(config), 1 << face).max() == T.edge_groups(int(config)).max() + 1


# --- grid -------------------------------------------------------------------------------------


def test_grid_layout():
    v = grid_vertices(3, scale=2.0)
    assert v.shape == (64, 3)
    assert torch.allclose(v.min(0).values, torch.full((3,), -1.0))
    assert torch.allclose(v.max(0).values, torch.full((3,), 1.0))
    # x fastest, then y, then z.
    assert torch.allclose(v[1] - v[0], torch.tensor([2 / 3, 0.0, 0.0]))
    assert torch.allclose(v[4] - v[0], torch.tensor([0.0, 2 / 3, 0.0]))
    assert torch.allclose(v[16] - v[0], torch.tensor([0.0, 0.0, 2 / 3]))
    cubes = grid_cubes(3)
    assert cubes.shape == (27, 8) and cubes.dtype == torch.long
    off = (v[cubes] - v[cubes[:, :1]]) / (2 / 3)
    assert torch.allclose(off, torch.as_tensor(T.CORNER_OFFSETS, dtype=torch.float32)[None])


# --- meshes -----------------------------------------------------------------------------------


def _edge_counts(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, undirected = torch.unique(directed.sort(1).values, dim=0, return_counts=True)
    _, per_direction = torch.unique(directed, dim=0, return_counts=True)
    return undirected, per_direction


def _check_closed_oriented(out) -> None:
    undirected, per_direction = _edge_counts(out.faces)
    assert (undirected == 2).all(), "every edge must be shared by exactly two faces"
    # Each directed edge once: neighbouring faces traverse their shared edge in opposite
    # directions, i.e. the orientation is consistent.
    assert (per_direction == 1).all()


def _vertices_manifold(faces: torch.Tensor) -> bool:
    """Whether the faces around every vertex form one closed fan (a disk, not two cones)."""
    fans: dict[int, dict[int, int]] = {}
    for a, b, c in faces.tolist():
        for v, p, q in ((a, b, c), (b, c, a), (c, a, b)):
            fan = fans.setdefault(v, {})
            if p in fan:
                return False
            fan[p] = q
    for fan in fans.values():
        start = next(iter(fan))
        cur, steps = fan[start], 1
        while cur != start and cur in fan and steps <= len(fan):
            cur, steps = fan[cur], steps + 1
        if cur != start or steps != len(fan):
            return False
    return True


def _euler(out) -> int:
    used = torch.unique(out.faces).numel()
    undirected, _ = _edge_counts(out.faces)
    return used - undirected.numel() + out.faces.shape[0]


def _signed_volume(out) -> float:
    a, b, c = (out.vertices[out.faces[:, i]] for i in range(3))
    return float((a * torch.cross(b, c, dim=-1)).sum() / 6)


def _sphere(x, r=0.3):
    return x.norm(dim=-1) - r


def _box(x, h=(0.3, 0.22, 0.26)):
    q = x.abs() - torch.tensor(h)
    return q.clamp_min(0).norm(dim=-1) + q.max(-1).values.clamp_max(0)


def _torus(x, big=0.28, small=0.1):
    ring = torch.sqrt(x[:, 0] ** 2 + x[:, 1] ** 2) - big
    return torch.sqrt(ring**2 + x[:, 2] ** 2) - small


SHAPES = {
    "sphere": (_sphere, 4 / 3 * math.pi * 0.3**3, 2),
    "box": (_box, 8 * 0.3 * 0.22 * 0.26, 2),
    "torus": (_torus, 2 * math.pi**2 * 0.28 * 0.1**2, 0),
}


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("training", [True, False])
def test_analytic_shapes_closed_manifold_oriented(name, training):
    fn, volume, euler = SHAPES[name]
    res = 28
    x = grid_vertices(res)
    out = flexicubes_mesh(fn(x), None, None, res, training=training)
    assert out.faces.dtype == torch.long and out.vertices.shape[1] == 3
    _check_closed_oriented(out)
    assert _vertices_manifold(out.faces)
    assert _euler(out) == euler
    # Outward normals: the signed volume is positive and close to the analytic one.
    assert _signed_volume(out) == pytest.approx(volume, rel=0.06)
    # Vertices near the zero level set (well under a cell, 1/28).
    assert fn(out.vertices).abs().mean() < 0.1 / res
    # Triangle counts: four per quad while training, two otherwise.
    per_quad = 4 if training else 2
    assert out.faces.shape[0] % per_quad == 0


def test_manifold_checks_detect_defects():
    tetra = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    assert _vertices_manifold(tetra)
    # Two tetrahedra sharing vertex 0: closed and oriented, but vertex 0 is two cones.
    bowtie = torch.cat([tetra, torch.where(tetra == 0, 0, tetra + 3)])
    _, per_direction = _edge_counts(bowtie)
    assert (per_direction == 1).all() and not _vertices_manifold(bowtie)
    # A triangle glued on an edge: three faces share it.
    undirected, _ = _edge_counts(torch.cat([tetra, torch.tensor([[0, 1, 4]])]))
    assert (undirected == 3).any()


def test_random_fields_always_manifold():
    # Noise exercises every configuration, the ambiguous faces and the double-pass flips.
    g = torch.Generator().manual_seed(0)
    res = 7
    for _ in range(12):
        s = torch.randn(res + 1, res + 1, res + 1, generator=g)
        for sl in (0, -1):
            s[sl], s[:, sl], s[:, :, sl] = 1.0, 1.0, 1.0
        w = torch.randn(res**3, 21, generator=g)
        d = torch.randn((res + 1) ** 3, 3, generator=g)
        for training in (True, False):
            out = flexicubes_mesh(s.reshape(-1), d, w, res, training=training)
            _check_closed_oriented(out)
            assert _vertices_manifold(out.faces)
            assert torch.isfinite(out.vertices).all() and torch.isfinite(out.l_dev)


def test_plane_is_exact():
    res = 12
    x = grid_vertices(res)
    normal = torch.tensor([0.3, -0.5, 0.81])
    normal = normal / normal.norm()
    sdf = x @ normal - 0.07
    w = torch.randn(res**3, 21, generator=torch.Generator().manual_seed(1))
    # alpha rescales the SDF per corner and so moves crossings; beta and gamma only average
    # points of the plane, and deformations move vertices whose SDF is recomputed here.
    w[:, 12:20] = 0
    d = 0.5 * torch.randn((res + 1) ** 3, 3, generator=torch.Generator().manual_seed(2))
    xd = x + DEFORM_BOUND / res * torch.tanh(d)
    for training in (True, False):
        out = flexicubes_mesh(xd @ normal - 0.07, d, w, res, training=training)
        assert out.faces.shape[0] > 0
        assert (out.vertices @ normal - 0.07).abs().max() < 1e-5
    # Undeformed, the plain extraction gives the same plane.
    out = flexicubes_mesh(sdf, None, None, res, training=False)
    assert (out.vertices @ normal - 0.07).abs().max() < 1e-5


def test_deformation_bounded_by_half_a_cell():
    res = 6
    x = grid_vertices(res)
    sdf = _sphere(x)
    huge = torch.full((x.shape[0], 3), 1e4)
    plain = flexicubes_mesh(sdf, None, None, res, training=False)
    moved = flexicubes_mesh(sdf, huge, None, res, training=False)
    assert torch.equal(plain.faces, moved.faces)
    shift = (moved.vertices - plain.vertices).abs()
    assert shift.max() <= 0.5 / res + 1e-6 and shift.max() > 0.4 / res


def test_gradients_reach_sdf_deform_and_weights():
    res = 10
    g = torch.Generator().manual_seed(0)
    x = grid_vertices(res)
    sdf = (_sphere(x) + 0.01 * torch.randn(x.shape[0], generator=g)).requires_grad_()
    deform = (0.1 * torch.randn(x.shape[0], 3, generator=g)).requires_grad_()
    weights = (0.5 * torch.randn(res**3, 21, generator=g)).requires_grad_()
    out = flexicubes_mesh(sdf, deform, weights, res, training=True)
    target = torch.randn(3, generator=g)
    loss = (out.vertices @ target).square().mean() + out.l_dev
    loss.backward()
    for t in (sdf, deform, weights):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert weights.grad[:, :12].abs().sum() > 0  # beta
    assert weights.grad[:, 12:20].abs().sum() > 0  # alpha
    assert weights.grad[:, 20].abs().sum() > 0  # gamma (four-triangle split)
    # L_dev alone also reaches the weights.
    weights.grad = None
    out = flexicubes_mesh(sdf, deform, weights, res, training=True)
    out.l_dev.backward()
    assert out.l_dev > 0 and weights.grad[:, :20].abs().sum() > 0


def _chamfer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(a, b)
    return d.min(1).values.mean() + d.min(0).values.mean()


def test_optimising_sdf_fits_a_target_sphere():
    res = 12
    x = grid_vertices(res)
    g = torch.Generator().manual_seed(0)
    target = torch.randn(800, 3, generator=g)
    target = 0.33 * target / target.norm(dim=-1, keepdim=True)
    # Start from an off-centre smaller sphere.
    sdf = (x - torch.tensor([0.05, 0.0, -0.03])).norm(dim=-1) - 0.22
    sdf = sdf.clone().requires_grad_()
    # Adam written out: building a torch.optim optimiser first imports torch._dynamo, which
    # alone takes longer than this whole file on the shared CPU.
    lr, b1, b2 = 0.02, 0.9, 0.999
    m, v = torch.zeros_like(sdf), torch.zeros_like(sdf)
    errors = []
    for step in range(1, 26):
        out = flexicubes_mesh(sdf, None, None, res, training=True)
        loss = _chamfer(out.vertices, target)
        errors.append(float(loss.detach()))
        (grad,) = torch.autograd.grad(loss + 0.1 * out.l_dev, sdf)
        with torch.no_grad():
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
            sdf -= lr * m_hat / (v_hat.sqrt() + 1e-8)
    assert errors[-1] < 0.3 * errors[0]


def test_batch_matches_single():
    res = 6
    x = grid_vertices(res)
    sdf = torch.stack([_sphere(x), _box(x)])
    w = torch.randn(2, res**3, 21, generator=torch.Generator().manual_seed(0))
    outs = flexicubes_mesh_batch(sdf, None, w, res, training=False)
    for i, out in enumerate(outs):
        single = flexicubes_mesh(sdf[i], None, w[i], res, training=False)
        assert torch.equal(out.faces, single.faces)
        assert torch.allclose(out.vertices, single.vertices)


def test_geometry_stays_in_full_precision():
    res = 8
    x = grid_vertices(res)
    ref = flexicubes_mesh(_sphere(x), None, None, res, training=False)
    half = flexicubes_mesh(_sphere(x).bfloat16(), None, None, res, training=False)
    assert half.vertices.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = flexicubes_mesh(_sphere(x), None, None, res, training=True)
    assert auto.vertices.dtype == torch.float32 and auto.l_dev.dtype == torch.float32
    assert half.faces.shape == ref.faces.shape
    double = flexicubes_mesh(_sphere(x.double()), None, None, res, training=False)
    assert double.vertices.dtype == torch.float64
    assert torch.allclose(double.vertices.float(), ref.vertices, atol=1e-6)


def test_no_surface_gives_empty_mesh():
    res = 4
    out = flexicubes_mesh(torch.ones((res + 1) ** 3), None, None, res)
    assert out.vertices.shape == (0, 3) and out.faces.shape == (0, 3) and float(out.l_dev) == 0


def test_validation_errors():
    res = 4
    nv = (res + 1) ** 3
    sdf = torch.zeros(nv)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValidationError, match="resolution"):
            flexicubes_mesh(sdf, None, None, bad)
    with pytest.raises(ValidationError, match="sdf"):
        flexicubes_mesh(torch.zeros(nv - 1), None, None, res)
    with pytest.raises(ValidationError, match="sdf"):
        flexicubes_mesh(torch.zeros(nv, dtype=torch.long), None, None, res)
    with pytest.raises(ValidationError, match="deform"):
        flexicubes_mesh(sdf, torch.zeros(nv, 2), None, res)
    with pytest.raises(ValidationError, match="weights"):
        flexicubes_mesh(sdf, None, torch.zeros(res**3, 20), res)
    with pytest.raises(ValidationError, match="weights"):
        flexicubes_mesh(sdf, None, torch.zeros(res**3, 21, dtype=torch.long), res)
    with pytest.raises(ValidationError, match="scale"):
        flexicubes_mesh(sdf, None, None, res, scale=0.0)
    with pytest.raises(ValidationError, match="sdf"):
        flexicubes_mesh_batch(sdf, None, None, res)
    with pytest.raises(ValidationError, match="weights"):
        flexicubes_mesh_batch(sdf[None], None, torch.zeros(2, res**3, 21), res)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    res = 12
    x = grid_vertices(res)
    sdf = _torus(x)
    w = torch.randn(res**3, 21, generator=torch.Generator().manual_seed(0))
    for training in (True, False):
        cpu = flexicubes_mesh(sdf, None, w, res, training=training)
        gpu = flexicubes_mesh(sdf.cuda(), None, w.cuda(), res, training=training)
        assert gpu.faces.device.type == "cuda"
        # Connectivity depends only on signs (and, in inference, on gamma products that a
        # last-bit difference could tip in a near tie, hence the shape only there).
        if training:
            assert torch.equal(cpu.faces, gpu.faces.cpu())
        assert cpu.faces.shape == gpu.faces.shape
        assert torch.allclose(cpu.vertices, gpu.vertices.cpu(), atol=1e-5)
        assert torch.allclose(cpu.l_dev, gpu.l_dev.cpu(), atol=1e-6)

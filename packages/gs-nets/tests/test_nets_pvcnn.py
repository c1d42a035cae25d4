"""PVCNN voxelisation / devoxelisation, PVConv, set abstraction and the point-voxel UNet."""

from __future__ import annotations

import itertools

import pytest
import torch

from gs_nets import (
    FeaturePropagation,
    PVCNNUNet,
    PVCNNUNetConfig,
    PVConv,
    SetAbstraction,
    Voxelization,
    avg_voxelize,
    normalize_voxel_coords,
    trilinear_devoxelize,
)


def test_normalize_coords_formula():
    torch.manual_seed(0)
    xyz = torch.randn(2, 30, 3, dtype=torch.float64)
    r = 8
    c = xyz - xyz.mean(1, keepdim=True)
    ref = (c / (2 * c.norm(dim=-1).amax(1)[:, None, None] + 0.1) + 0.5) * r
    torch.testing.assert_close(
        normalize_voxel_coords(xyz, r, True, 0.1), ref.clamp(0, r - 1).float()
    )
    ref = ((c + 1) / 2 * r).clamp(0, r - 1)
    torch.testing.assert_close(normalize_voxel_coords(xyz, r, False), ref.float())
    with pytest.raises(ValueError, match="resolution"):
        normalize_voxel_coords(xyz, 1)


def test_avg_voxelize_brute_force():
    torch.manual_seed(0)
    r, n = 3, 40
    vox = torch.randint(0, r, (2, n, 3))
    feats = torch.randn(2, n, 4)
    grid = avg_voxelize(feats, vox, r)
    assert grid.shape == (2, 4, r, r, r)
    for b, x, y, z in itertools.product(range(2), range(r), range(r), range(r)):
        sel = (vox[b] == torch.tensor([x, y, z])).all(-1)
        ref = feats[b, sel].mean(0) if sel.any() else torch.zeros(4)
        torch.testing.assert_close(grid[b, :, x, y, z], ref)


def test_trilinear_devoxelize_formula():
    torch.manual_seed(0)
    r = 4
    grid = torch.randn(2, 3, r, r, r, dtype=torch.float64)
    coords = torch.rand(2, 10, 3, dtype=torch.float64) * (r - 1)
    coords[0, 0] = torch.tensor([r - 1.0, 0.0, r - 1.0])  # on the boundary
    out = trilinear_devoxelize(grid, coords)
    assert out.shape == (2, 10, 3)
    for b, i in itertools.product(range(2), range(10)):
        p = coords[b, i]
        lo = p.floor().long().clamp(max=r - 2)
        t = p - lo
        ref = torch.zeros(3, dtype=torch.float64)
        for dx, dy, dz in itertools.product((0, 1), repeat=3):
            w = (t[0] if dx else 1 - t[0]) * (t[1] if dy else 1 - t[1]) * (t[2] if dz else 1 - t[2])
            ref += w * grid[b, :, lo[0] + dx, lo[1] + dy, lo[2] + dz]
        torch.testing.assert_close(out[b, i], ref.float().double(), atol=1e-6, rtol=1e-6)


def test_voxelize_devoxelize_constant_field():
    # Every voxel occupied (dense lattice + random points in [-1, 1]^3, normalize=False): a
    # constant feature field comes back unchanged at every point.
    torch.manual_seed(0)
    r = 6
    ticks = (torch.arange(2 * r) + 0.5) / r - 1.0
    lattice = torch.stack(torch.meshgrid(ticks, ticks, ticks, indexing="ij"), -1).reshape(1, -1, 3)
    xyz = torch.cat([lattice, torch.rand(1, 500, 3) * 2 - 1], 1)
    xyz = xyz - xyz.mean(1, keepdim=True)  # centred already: PVCNN's centring is a no-op
    feats = torch.tensor([1.5, -2.25, 0.0]).expand(1, xyz.shape[1], 3)
    vox = Voxelization(r, normalize=False)
    grid, coords = vox(feats, xyz)
    counts = avg_voxelize(torch.ones(1, xyz.shape[1], 1), coords.round().long(), r)
    assert (counts > 0).all()
    out = trilinear_devoxelize(grid, coords)
    torch.testing.assert_close(out, feats, atol=1e-6, rtol=0)


def test_voxelize_devoxelize_identity_on_voxel_centres():
    # One point per voxel centre: devoxelising the voxelised field returns each point's feature.
    r = 4
    ijk = torch.stack(torch.meshgrid(*[torch.arange(r)] * 3, indexing="ij"), -1).reshape(1, -1, 3)
    coords = ijk.float()
    feats = torch.randn(1, r**3, 5)
    grid = avg_voxelize(feats, ijk, r)
    torch.testing.assert_close(trilinear_devoxelize(grid, coords), feats)


def test_pvconv_shapes_grads_equivariance():
    torch.manual_seed(0)
    conv = PVConv(4, 8, resolution=6, with_se=True)
    xyz = torch.randn(2, 64, 3)
    feats = torch.randn(2, 64, 4, requires_grad=True)
    out = conv(feats, xyz)
    assert out.shape == (2, 64, 8)
    out.square().mean().backward()
    assert feats.grad.abs().sum() > 0 and conv.voxel_layers[0].weight.grad.abs().sum() > 0
    conv.eval()
    perm = torch.randperm(64)
    with torch.no_grad():
        a = conv(feats, xyz)
        b = conv(feats[:, perm], xyz[:, perm])
    torch.testing.assert_close(b, a[:, perm], atol=1e-5, rtol=1e-5)


def test_voxel_branch_sees_neighbours():
    # The voxel branch spreads information between nearby points (the point branch cannot).
    torch.manual_seed(0)
    conv = PVConv(2, 4, resolution=4).eval()
    xyz = torch.rand(1, 40, 3)
    feats = torch.randn(1, 40, 2, requires_grad=True)
    g = torch.autograd.grad(conv(feats, xyz)[0, 0].sum(), feats)[0]
    assert g[0, 1:].abs().sum() > 0


def test_set_abstraction_and_propagation():
    torch.manual_seed(0)
    xyz, feats = torch.randn(2, 64, 3), torch.randn(2, 64, 5)
    sa = SetAbstraction(5, [8, 16], stride=4, k=8)
    f, c = sa(feats, xyz)
    assert f.shape == (2, 16, 16) and c.shape == (2, 16, 3)
    # centres are FPS points of the input
    assert (((c[:, :, None] - xyz[:, None]) ** 2).sum(-1).amin(-1) == 0).all()
    fp = FeaturePropagation(16, 5, [12])
    up = fp(xyz, c, f, feats)
    assert up.shape == (2, 64, 12)
    up.sum().backward()
    assert sa.mlp[0].weight.grad.abs().sum() > 0
    # radius: neighbours beyond it are replaced by the nearest, so a tiny radius = 1-NN pooling
    sa_r = SetAbstraction(5, [8], stride=4, k=8, radius=1e-6).eval()
    sa_1 = SetAbstraction(5, [8], stride=4, k=1).eval()
    sa_1.load_state_dict(sa_r.state_dict())
    torch.testing.assert_close(sa_r(feats, xyz)[0], sa_1(feats, xyz)[0])


def test_pvcnn_unet_tiny(tmp_path):
    torch.manual_seed(0)
    cfg = PVCNNUNetConfig.preset("tiny", in_channels=3)
    net = PVCNNUNet(cfg)
    xyz, feats = torch.randn(2, 48, 3), torch.randn(2, 48, 3)
    out = net(xyz, feats)
    assert out.shape == (2, 48, net.out_channels)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="feats"):
        net(xyz, None)
    net.save_pretrained(tmp_path / "pv")
    again = PVCNNUNet.from_pretrained(tmp_path / "pv").eval()
    net.eval()
    torch.testing.assert_close(again(xyz, feats), net(xyz, feats))


def test_pvcnn_presets_build():
    for name in ("pvcnn2", "small"):
        with torch.device("meta"):
            net = PVCNNUNet(PVCNNUNetConfig.preset(name, in_channels=4))
        assert net.out_channels == PVCNNUNetConfig.preset(name).fp_levels[-1].pv_channels


def test_pvcnn_unet_given_sample_indices():
    torch.manual_seed(0)
    net = PVCNNUNet(PVCNNUNetConfig.preset("tiny", in_channels=3)).eval()
    xyz, feats = torch.randn(2, 48, 3), torch.randn(2, 48, 3)
    out, idx = net(xyz, feats, return_sample_idx=True)
    assert [i.shape for i in idx] == [(2, 12), (2, 3)]
    torch.testing.assert_close(net(xyz, feats, sample_idx=idx), out)
    # other centres give another result: the indices are really used
    other = [torch.arange(12).expand(2, 12), None]
    assert not torch.allclose(net(xyz, feats, sample_idx=other), out)
    with pytest.raises(ValueError, match="sample_idx"):
        net(xyz, feats, sample_idx=[None])
    with pytest.raises(ValueError, match="centers_idx"):
        net(xyz, feats, sample_idx=[torch.zeros(2, 5, dtype=torch.long), None])

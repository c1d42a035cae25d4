"""The torch backend against independent references.

The reference renderer below is written from the formulas, not from the backend: quaternion
rotation by q v q*, the projection Jacobian by autodiff of the pinhole map, the 2D inverse by
torch.linalg.inv, and compositing as a loop over depth-sorted Gaussians with a dense pixel
vector (all pixels x all Gaussians, no culling, no tiles, no chunks). Float64 runs must agree
to round-off in images and in every parameter's gradient.
"""

from __future__ import annotations

import math

import pytest
import torch

from gs_core import Cameras, Gaussians, render
from gs_core.rendering import eval_sh, project_gaussians, sh_to_rgb
from gs_core.rendering.projection import quat_scale_to_covar
from gs_core.rendering.rasterization import rasterize_pixels
from gs_core.rendering.torch_backend import render_torch

F64 = torch.float64


def _qrot(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate v by unit quaternion q (wxyz) as q v q*."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, xyz = q[..., :1], q[..., 1:]
    t = 2 * torch.linalg.cross(xyz, v, dim=-1)
    return v + w * t + torch.linalg.cross(xyz, t, dim=-1)


def reference_render(
    means,
    quats,
    scales,
    opac,
    feats_fn,
    viewmat,
    K,
    width,
    height,
    bg=None,
    eps2d=0.3,
    near=0.01,
    antialiased=False,
):
    """Dense all-pairs 3DGS compositing for one camera; returns colors [H, W, D], alpha, stopped."""
    n = means.shape[0]
    rot, t = viewmat[:3, :3], viewmat[:3, 3]
    mc = means @ rot.T + t
    eye = torch.eye(3, dtype=means.dtype)
    rq = torch.stack([_qrot(quats, eye[i].expand(n, 3)) for i in range(3)], -1)
    m = rq * scales[:, None, :]
    covc = rot @ (m @ m.transpose(-1, -2)) @ rot.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]

    def pinhole(p):
        return torch.stack([fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy])

    # Per-Gaussian Jacobian of the pinhole map by autodiff (row i of u depends on mc[i] only).
    u = pinhole(mc.T)  # [2, n]
    jac = torch.stack(
        [torch.autograd.grad(u[k].sum(), mc, create_graph=True)[0] for k in range(2)], -2
    )
    c2 = jac @ covc @ jac.transpose(-1, -2)
    det0 = torch.linalg.det(c2)
    c2 = c2 + eps2d * torch.eye(2, dtype=means.dtype)
    o = opac * torch.sqrt(det0 / torch.linalg.det(c2)) if antialiased else opac
    conic = torch.linalg.inv(c2)
    m2 = u.T
    campos = -rot.T @ t
    feats = feats_fn(means - campos, mc[:, 2])
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=means.dtype) + 0.5,
        torch.arange(width, dtype=means.dtype) + 0.5,
        indexing="ij",
    )
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)
    p = pix.shape[0]
    trans = torch.ones(p, dtype=means.dtype)
    color = torch.zeros(p, feats.shape[-1], dtype=means.dtype)
    done = torch.zeros(p, dtype=torch.bool)
    for g in torch.argsort(mc[:, 2], stable=True).tolist():
        if not bool(mc[g, 2] >= near):
            continue
        d = m2[g] - pix
        sig = 0.5 * (conic[g, 0, 0] * d[:, 0] ** 2 + conic[g, 1, 1] * d[:, 1] ** 2)
        sig = sig + conic[g, 0, 1] * d[:, 0] * d[:, 1]
        a = torch.clamp_max(o[g] * torch.exp(-sig), 0.999)
        valid = (a >= 1 / 255) & (sig >= 0) & ~done
        nt = trans * (1 - a)
        stop = valid & (nt <= 1e-4)
        done = done | stop
        use = valid & ~stop
        color = color + torch.where(use[:, None], (a * trans)[:, None] * feats[g], 0.0)
        trans = torch.where(use, nt, trans)
    if bg is not None:
        color = color + trans[:, None] * bg
    return color.reshape(height, width, -1), (1 - trans).reshape(height, width, 1), bool(done.any())


def random_scene(n, seed, sh_degree=0, spread=0.6, dtype=F64, opacity=(0.05, 0.95)):
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * spread
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.15 + 0.02
    lo, hi = opacity
    opac = torch.rand(n, generator=g, dtype=dtype) * (hi - lo) + lo
    sh = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g, dtype=dtype) * 0.4
    return [t.requires_grad_() for t in (means, quats, scales, opac, sh)]


NAMES = ("means", "quats", "scales", "opacities", "sh")


def _compare(params, out_feats, out_alpha, ref_feats, ref_alpha, atol_img, rtol_grad, seed=0):
    torch.manual_seed(seed)
    w = torch.randn_like(ref_feats)
    wa = torch.randn_like(ref_alpha)
    assert (out_feats - ref_feats).abs().max() < atol_img
    assert (out_alpha - ref_alpha).abs().max() < atol_img
    g1 = torch.autograd.grad((out_feats * w).sum() + (out_alpha * wa).sum(), params)
    g2 = torch.autograd.grad((ref_feats * w).sum() + (ref_alpha * wa).sum(), params)
    for name, a, b in zip(NAMES, g1, g2, strict=True):
        scale = b.abs().max().clamp_min(1e-12)
        assert (a - b).abs().max() / scale < rtol_grad, name


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("rasterize_mode", ["classic", "antialiased"])
def test_matches_dense_reference_float64(sh_degree, rasterize_mode):
    means, quats, scales, opac, sh = params = random_scene(40, seed=sh_degree, sh_degree=sh_degree)
    cams = Cameras.orbit([25.0], [10.0], radius=2.5, width=20, height=18).to(dtype=F64)
    bg = torch.tensor([0.2, 0.3, 0.9], dtype=F64)
    out = render(
        Gaussians(means, quats, scales, opac, sh),
        cams,
        background=bg,
        mode="RGB+D",
        backend="torch",
        rasterize_mode=rasterize_mode,
    )
    feats = torch.cat([out.rgb[0], out.depth[0]], -1)

    def feats_fn(dirs, z):
        return torch.cat([sh_to_rgb(sh_degree, dirs, sh), z[:, None]], -1)

    ref, ref_alpha, _ = reference_render(
        means,
        quats,
        scales,
        opac,
        feats_fn,
        cams.viewmats[0],
        cams.Ks[0],
        20,
        18,
        bg=torch.cat([bg, bg.new_zeros(1)]),
        antialiased=rasterize_mode == "antialiased",
    )
    _compare(params, feats, out.alpha[0], ref, ref_alpha, 1e-10, 1e-9)


@pytest.mark.parametrize("chunk_pairs", [1, 10**9])
def test_early_stop_and_saturation_match_reference(chunk_pairs):
    # Dense opaque layers: pixels reach T <= 1e-4 and some alphas clamp at 0.999. A tiny chunk
    # budget forces many chunks, finished-pixel culling and footprint skipping.
    means, quats, scales, opac, sh = params = random_scene(
        250, seed=7, sh_degree=1, spread=0.4, opacity=(0.7, 1.0)
    )
    with torch.no_grad():
        opac[:30] = 1.0
    cams = Cameras.orbit([10.0], [20.0], radius=2.5, width=16, height=16).to(dtype=F64)
    col, alpha, _ = render_torch(
        means,
        quats,
        scales,
        opac,
        sh,
        1,
        cams.viewmats,
        cams.Ks,
        16,
        16,
        None,
        "RGB",
        chunk_pairs=chunk_pairs,
    )
    ref, ref_alpha, stopped = reference_render(
        means,
        quats,
        scales,
        opac,
        lambda d, z: sh_to_rgb(1, d, sh),
        cams.viewmats[0],
        cams.Ks[0],
        16,
        16,
    )
    assert stopped, "scene must exercise the transmittance early stop"
    assert float(ref_alpha.detach().max()) > 0.999
    _compare(params, col[0], alpha[0], ref, ref_alpha, 1e-10, 1e-9)


def test_float32_close_to_float64():
    p64 = random_scene(60, seed=3, sh_degree=2)
    cams = Cameras.orbit([0.0, 120.0], [5.0, -20.0], radius=2.5, width=24, height=24)
    outs = []
    for dtype in (F64, torch.float32):
        p = [t.detach().to(dtype).requires_grad_() for t in p64]
        o = render(Gaussians(*p), cams.to(dtype=dtype), mode="RGB+ED", backend="torch")
        loss = o.rgb.square().sum() + o.depth.sum() * 0.1
        outs.append((o, torch.autograd.grad(loss, p)))
    (a, ga), (b, gb) = outs
    assert (a.rgb - b.rgb.double()).abs().max() < 1e-4
    assert (a.alpha - b.alpha.double()).abs().max() < 1e-4
    for name, x, y in zip(NAMES, ga, gb, strict=True):
        cos = torch.nn.functional.cosine_similarity(x.flatten(), y.double().flatten(), dim=0)
        assert cos > 0.9999, name


def test_sh_matches_gsplat_torch_reference():
    gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    torch.manual_seed(0)
    dirs = torch.randn(500, 3, dtype=F64) * 3
    coeffs = torch.randn(500, 16, 3, dtype=F64)
    for degree in range(4):
        ref = gsplat_impl._spherical_harmonics(degree, dirs, coeffs)
        assert torch.allclose(eval_sh(degree, dirs, coeffs), ref, atol=1e-12)


def test_sh_basis_is_orthonormal():
    # Real SH are orthonormal on the sphere: integrate Y_i Y_j with a Fibonacci lattice.
    from gs_core.rendering import sh_basis

    n = 20000
    i = torch.arange(n, dtype=F64) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    r = torch.sqrt(1 - z * z)
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)
    y = sh_basis(3, dirs)
    gram = (y.T @ y) * (4 * math.pi / n)
    assert torch.allclose(gram, torch.eye(16, dtype=F64), atol=2e-3)


def test_projection_matches_gsplat_torch_reference():
    gsplat_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    torch.manual_seed(1)
    n = 300
    means = torch.randn(2, n, 3, dtype=F64) * 1.5  # some far outside the frustum (clamped J)
    quats = torch.randn(2, n, 4, dtype=F64)
    scales = torch.rand(2, n, 3, dtype=F64) * 0.2 + 0.01
    opac = torch.rand(2, n, dtype=F64)
    cams = Cameras.orbit([0.0, 90.0, 200.0], [10.0, 30.0, -40.0], radius=3.0, width=64, height=48)
    vm = cams.viewmats.to(F64).expand(2, 3, 4, 4)
    ks = cams.Ks.to(F64).expand(2, 3, 3, 3)
    for aa in (False, True):
        p = project_gaussians(means, quats, scales, opac, vm, ks, 64, 48, antialiased=aa)
        covars = quat_scale_to_covar(quats, scales)
        _, m2, depths, conics, comp = gsplat_impl._fully_fused_projection(
            means, covars, vm, ks, 64, 48, calc_compensations=aa
        )
        ok = p.radii.gt(0).all(-1)
        assert ok.sum() > 100
        assert torch.allclose(p.means2d[ok], m2[ok], atol=1e-9)
        assert torch.allclose(p.depths, depths, atol=1e-12)
        assert torch.allclose(p.conics[ok], conics[ok], rtol=1e-8, atol=1e-10)
        if aa:
            assert torch.allclose(p.compensations[ok], comp[ok], atol=1e-9)


def test_radii_are_opacity_aware_bounds():
    # Outside [m - r, m + r] every pixel's alpha is below 1/255 (checked densely), and r is the
    # smallest integer for which that holds along each axis.
    means, quats, scales, opac, _ = (t.detach() for t in random_scene(50, seed=5))
    cams = Cameras.orbit([0.0], [0.0], radius=2.5, width=40, height=40).to(dtype=F64)
    p = project_gaussians(means, quats, scales, opac, cams.viewmats, cams.Ks, 40, 40)
    cov_inv = p.conics[0]
    a, b, c = cov_inv.unbind(-1)
    det = a * c - b * b
    var_x, var_y = c / det, a / det  # diagonal of the (blurred) 2D covariance
    o = p.opacities[0]
    extent = torch.sqrt(2 * torch.log(o * 255)).clamp_max(3.33)
    vis = p.radii[0].gt(0).all(-1)
    assert torch.equal(p.radii[0][vis, 0].double(), torch.ceil(extent * var_x.sqrt())[vis])
    assert torch.equal(p.radii[0][vis, 1].double(), torch.ceil(extent * var_y.sqrt())[vis])
    # the extent of the level set alpha = 1/255 along x is exactly extent * sqrt(var_x)
    dx = extent * var_x.sqrt() * 1.0001
    dy = -b * dx / c  # the y that minimises sigma for this dx
    sigma = 0.5 * (a * dx**2 + c * dy**2) + b * dx * dy
    assert bool((o * torch.exp(-sigma) < 1 / 255)[vis].all())


def test_rasterize_pixels_finite_differences_with_backgrounds():
    torch.manual_seed(0)
    v = 12
    means2d = (torch.rand(v, 2, dtype=F64) * 10).requires_grad_()
    conics = torch.tensor([0.3, 0.05, 0.4], dtype=F64).repeat(v, 1).requires_grad_()
    colors = torch.rand(v, 3, dtype=F64).requires_grad_()
    opac = (torch.rand(v, dtype=F64) * 0.8 + 0.1).requires_grad_()
    radii = torch.full((v, 2), 6, dtype=torch.int32)
    img = torch.randint(0, 2, (v,))  # entries are given front to back, images interleaved
    bg = torch.rand(2, 3, dtype=F64).requires_grad_()

    def f(m, c, col, o, b):
        return rasterize_pixels(m, c, col, o, radii, img, 2, 10, 10, backgrounds=b)

    # Central differences of a random projection of the outputs along random input directions.
    args = (means2d, conics, colors, opac, bg)
    w_img, w_alpha = torch.randn(2, 10, 10, 3, dtype=F64), torch.randn(2, 10, 10, 1, dtype=F64)

    def loss(*a):
        out, alpha = f(*a)
        return (out * w_img).sum() + (alpha * w_alpha).sum()

    grads = torch.autograd.grad(loss(*args), args)
    for _ in range(3):
        dirs = [torch.randn_like(a) for a in args]
        eps = 1e-6
        with torch.no_grad():
            plus = loss(*(a + eps * d for a, d in zip(args, dirs, strict=True)))
            minus = loss(*(a - eps * d for a, d in zip(args, dirs, strict=True)))
        numeric = (plus - minus) / (2 * eps)
        analytic = sum((g * d).sum() for g, d in zip(grads, dirs, strict=True))
        assert abs(float(numeric - analytic)) < 1e-6 * max(1.0, abs(float(numeric)))


def test_behind_camera_and_near_plane_give_no_nan():
    means, quats, scales, opac, sh = random_scene(30, seed=11)
    cams = Cameras.orbit([0.0], [0.0], radius=2.5, width=16, height=16).to(dtype=F64)
    with torch.no_grad():
        # camera at z = +2.5 looking down -z: camera-space depth = 2.5 - z
        means[:10, :2] = torch.randn(10, 2, dtype=F64) * 0.01
        means[:10, 2] = 2.5 - torch.linspace(-0.2, 0.009, 10, dtype=F64)  # in front of near
        means[10:20, 2] += 6.0  # far behind the camera
    out = render(Gaussians(means, quats, scales, opac, sh), cams, mode="RGB+ED", backend="torch")
    assert bool(out.meta["radii"][0, :20].eq(0).all())
    loss = out.rgb.sum() + out.depth.sum() + out.alpha.sum()
    grads = torch.autograd.grad(loss, [means, quats, scales, opac, sh])
    for t in (out.rgb, out.depth, out.alpha, *grads):
        assert bool(torch.isfinite(t).all())


def test_alpha_saturates_at_0999_without_opacity_gradient():
    # One round Gaussian on the optical axis of a 9 x 9 camera: the centre pixel sits exactly on
    # the projected mean (sigma = 0), so alpha there is min(0.999, o).
    cam = Cameras.orbit([0.0], [0.0], radius=2.5, width=9, height=9).to(dtype=F64)
    for o, expect in ((1.0, 0.999), (0.5, 0.5)):
        opac = torch.tensor([o], dtype=F64, requires_grad=True)
        g = Gaussians(
            torch.zeros(1, 3, dtype=F64),
            torch.tensor([[1.0, 0, 0, 0]], dtype=F64),
            torch.full((1, 3), 0.3, dtype=F64),
            opac,
            torch.full((1, 1, 3), -0.5 / 0.28209479177387814, dtype=F64),  # black
        )
        out = render(g, cam, background=1.0, backend="torch")
        assert abs(float(out.alpha[0, 4, 4, 0].detach()) - expect) < 1e-12
        assert abs(float(out.rgb[0, 4, 4, 0].detach()) - (1 - expect)) < 1e-12
        (grad,) = torch.autograd.grad(out.rgb[0, 4, 4, 0], opac)
        assert float(grad) == (0.0 if o == 1.0 else -1.0)


def test_chunking_bounds_candidates_per_batch(monkeypatch):
    # Image 0 is covered by opaque splats first, so the entries behind them are skipped and the
    # next chunk is planned larger; image 1's entries then all survive and must be re-split so
    # no batch enumerates far more than the budget. Results equal one unchunked pass.
    from gs_core.rendering import rasterization as rz

    g = torch.Generator().manual_seed(0)
    n_front, n_hidden, n_other = 12, 150, 150
    v = n_front + n_hidden + n_other
    img = torch.cat([torch.zeros(n_front + n_hidden), torch.ones(n_other)]).long()
    means2d = torch.rand(v, 2, generator=g, dtype=F64) * 16
    means2d[:n_front] = (
        torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]]).repeat(3, 1).to(F64)
    )
    conics = torch.tensor([0.5, 0.0, 0.5], dtype=F64).repeat(v, 1)
    conics[:n_front] = torch.tensor([0.002, 0.0, 0.002], dtype=F64)
    opac = torch.rand(v, generator=g, dtype=F64) * 0.5 + 0.3
    opac[:n_front] = 1.0
    colors = torch.rand(v, 3, generator=g, dtype=F64)
    radii = torch.full((v, 2), 4, dtype=torch.int32)
    radii[:n_front] = 16
    params = [t.requires_grad_() for t in (means2d, conics, colors, opac)]

    sizes = []
    run = rz._Compositor.run

    def spy(self, ent):
        sizes.append(int(rz._take(self.fp.counts, ent).sum()))
        return run(self, ent)

    outs = []
    for chunk_pairs in (1, 10**9):
        sizes.clear()
        monkeypatch.setattr(rz._Compositor, "run", spy)
        out, alpha = rasterize_pixels(
            *params[:3], params[3], radii, img, 2, 16, 16, chunk_pairs=chunk_pairs
        )
        loss = (out * torch.arange(3, dtype=F64)).sum() + alpha.sum()
        outs.append((out, alpha, torch.autograd.grad(loss, params)))
        if chunk_pairs == 1:
            assert len(sizes) > 5
            assert max(sizes) <= 2 * 256 + 16 * 16 * 4  # budget = H*W; one entry may exceed it
    (o1, a1, g1), (o2, a2, g2) = outs
    assert torch.allclose(o1, o2, atol=1e-12) and torch.allclose(a1, a2, atol=1e-12)
    for x, y in zip(g1, g2, strict=True):
        assert torch.allclose(x, y, atol=1e-10)


def test_work_follows_coverage_not_pixels_times_gaussians():
    # 60k tiny splats on a 256 x 256 image: an all-pairs tensor would hold 4e9 entries (16 GB);
    # the rasteriser only ever materialises pairs inside each splat's few-pixel footprint.
    g = torch.Generator().manual_seed(0)
    v = 60_000
    means2d = (torch.rand(v, 2, generator=g) * 256).requires_grad_()
    conics = torch.tensor([2.0, 0.0, 2.0]).repeat(v, 1).requires_grad_()  # std 0.7 px
    colors = torch.rand(v, 3, generator=g).requires_grad_()
    opac = torch.full((v,), 0.8, requires_grad=True)
    radii = torch.full((v, 2), 3, dtype=torch.int32)
    out, alpha = rasterize_pixels(
        means2d, conics, colors, opac, radii, torch.zeros(v, dtype=torch.long), 1, 256, 256
    )
    pairs = sum(k.numel() for k, _ in out.grad_fn.chunks)
    assert 0 < pairs <= v * 7 * 7  # at most the footprint boxes
    assert float(alpha.detach().mean()) > 0.5
    (out.sum() + alpha.sum()).backward()
    assert bool(torch.isfinite(means2d.grad).all()) and float(opac.grad.abs().sum()) > 0

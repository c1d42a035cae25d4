"""Unit tests of Compress3D's components on tiny configurations."""

from __future__ import annotations

import math

import pytest
import torch

from gs_core.errors import ValidationError
from gs_method_compress3d.axis_collapse import AxisCollapse
from gs_method_compress3d.config import Compress3DConfig
from gs_method_compress3d.guidance import (
    condition_dropout,
    dual_guidance,
    guidance_drop_masks,
)
from gs_method_compress3d.noise_schedule import NoiseSchedule, ddim_timesteps
from gs_method_compress3d.point_encoder import LocalPoolPointNet, local_max_pool
from gs_method_compress3d.posterior import DiagonalGaussian
from gs_method_compress3d.prior import EmbeddingPrior
from gs_method_compress3d.procedural_encoders import (
    ProceduralContrastiveEncoders,
    retrieval_accuracy,
)
from gs_method_compress3d.splatting import splat_trilinear
from gs_method_compress3d.triplane_encoder import TriplaneEncoder
from gs_method_compress3d.triplane_unet import TriplaneUNet
from gs_method_compress3d.volume_attention import (
    VolumeCrossAttention,
    column_attention,
    volume_columns,
)

CFG = Compress3DConfig.preset("tiny")


# ---------------------------------------------------------------- splatting (Eq. 1-2)
def test_splatting_puts_a_vertex_point_on_its_vertex():
    # x = -1 + 2 * 2/4 = 0 -> vertex 2; y = -1 -> 0; z = 1 -> 4 (r = 5)
    xyz = torch.tensor([[[0.0, -1.0, 1.0]]])
    vol = splat_trilinear(xyz, torch.tensor([[[3.0]]]), 5)
    assert vol.shape == (1, 1, 5, 5, 5)
    assert vol[0, 0, 4, 0, 2] == 3.0 and vol.sum() == 3.0


def test_splatting_normalisation_cancels_density():
    torch.manual_seed(0)
    xyz = torch.rand(1, 50, 3) * 0.2 - 0.1  # all inside one neighbourhood
    feats = torch.full((1, 50, 2), 0.7)
    dense = splat_trilinear(xyz, feats, 4)
    sparse = splat_trilinear(xyz[:, :5], feats[:, :5], 4)
    touched = splat_trilinear(xyz, torch.ones(1, 50, 1), 4, normalize=False)[0, 0] > 0
    # Eq. 2: every touched vertex holds the constant feature, whatever the number of points
    torch.testing.assert_close(dense[0, :, touched], torch.full_like(dense[0, :, touched], 0.7))
    touched_sparse = splat_trilinear(xyz[:, :5], torch.ones(1, 5, 1), 4, normalize=False)[0, 0] > 0
    torch.testing.assert_close(
        sparse[0, :, touched_sparse], torch.full_like(sparse[0, :, touched_sparse], 0.7)
    )
    raw = splat_trilinear(xyz, feats, 4, normalize=False)
    assert raw.max() > 1.0  # Eq. 1 alone grows with density
    # weights of one point sum to one: the raw volume of unit features sums to N
    assert math.isclose(
        float(splat_trilinear(xyz, torch.ones(1, 50, 1), 4, False).sum()), 50.0, rel_tol=1e-5
    )


def test_splatting_rejects_bad_shapes():
    with pytest.raises(ValidationError, match="feats"):
        splat_trilinear(torch.zeros(1, 4, 3), torch.zeros(1, 5, 2), 4)


# ---------------------------------------------------------------- axis collapse (Eq. 3-5)
def test_axis_collapse_drops_the_right_axis():
    r = 4
    col = AxisCollapse(1, 1, r)
    for conv in (col.xy, col.yz, col.zx):
        torch.nn.init.ones_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    vol = torch.zeros(1, 1, r, r, r)
    vol[0, 0, 3, 1, 2] = 1.0  # z = 3, y = 1, x = 2
    planes = col(vol)[0, :, 0]  # [3, r, r]
    assert planes[0, 1, 2] == 1.0  # xy: height y, width x
    assert planes[1, 3, 1] == 1.0  # yz: height z, width y
    assert planes[2, 2, 3] == 1.0  # zx: height x, width z
    assert planes.sum() == 3.0


# ---------------------------------------------------------------- PointNet
def test_local_max_pool_is_per_cell():
    feats = torch.tensor([[[1.0], [5.0], [2.0]]])
    cells = torch.tensor([[0, 0, 3]])
    assert local_max_pool(feats, cells, 8)[0, :, 0].tolist() == [5.0, 5.0, 2.0]


def test_pointnet_shapes_and_locality():
    torch.manual_seed(0)
    net = LocalPoolPointNet(8, hidden=8, blocks=2, frequencies=2, pool_resolution=2)
    xyz = torch.tensor([[[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], [0.6, 0.5, 0.5]]])
    out = net(xyz, torch.rand(1, 3, 3))
    assert out.shape == (1, 3, 8)
    moved = xyz.clone()
    moved[0, 2, 0] = 0.7  # a point of the far cell moves; the first point's cell is untouched
    rgb = torch.rand(1, 3, 3)
    a, b = net(xyz, rgb), net(moved, rgb)
    torch.testing.assert_close(a[0, 0], b[0, 0])
    assert not torch.allclose(a[0, 1], b[0, 1])


# ---------------------------------------------------------------- 3D-aware attention (Eq. 6-11)
def test_volume_columns_gather_the_cells_above_a_texel():
    r, rp = 4, 2  # m = 2
    vol = torch.arange(r**3, dtype=torch.float32).reshape(1, 1, r, r, r)  # [z, y, x]
    cols = volume_columns(vol, rp)  # [1, 3, rp, rp, m*m*r, 1]
    assert cols.shape == (1, 3, rp, rp, 2 * 2 * r, 1)
    # plane xy, texel (row y=1, col x=0): y in {2, 3}, x in {0, 1}, every z
    want = {float(vol[0, 0, z, y, x]) for z in range(r) for y in (2, 3) for x in (0, 1)}
    assert set(cols[0, 0, 1, 0, :, 0].tolist()) == want
    # plane zx (height x, width z), texel (row x=1, col z=0)
    want = {float(vol[0, 0, z, y, x]) for z in (0, 1) for y in range(r) for x in (2, 3)}
    assert set(cols[0, 2, 1, 0, :, 0].tolist()) == want


def test_column_attention_matches_eq_11_by_hand():
    torch.manual_seed(0)
    d, cv, r, rp = 4, 3, 4, 2
    q = torch.randn(1, 3, d, rp, rp)
    k = torch.randn(1, d, r, r, r)
    v = torch.randn(1, cv, r, r, r)
    out = column_attention(q, k, v)
    kc, vc = volume_columns(k, rp), volume_columns(v, rp)
    p, i, j = 1, 0, 1
    qij = q[0, p, :, i, j]
    w = torch.softmax(kc[0, p, i, j] @ qij / math.sqrt(d), dim=0)
    torch.testing.assert_close(out[0, p, :, i, j], w @ vc[0, p, i, j])


def test_attention_flag_changes_the_encoder_path():
    torch.manual_seed(0)
    xyz = torch.rand(1, 200, 3) * 2 - 1
    rgb = torch.rand(1, 200, 3)
    with_att = TriplaneEncoder(CFG.encoder, CFG.attention)
    assert isinstance(with_att.attention, VolumeCrossAttention)
    without = TriplaneEncoder(CFG.encoder, CFG.attention.model_copy(update={"enabled": False}))
    assert without.attention is None
    without.load_state_dict(
        {k: v for k, v in with_att.state_dict().items() if not k.startswith("attention.")}
    )
    # a fresh attention residual is zero (zero-initialised values): it starts as "w/o atten"
    a = with_att(xyz, rgb).mean
    b = without(xyz, rgb).mean
    assert a.shape == b.shape == (1, 3, 4, 8, 8)
    torch.testing.assert_close(a, b)
    # ... and still learns: the values get a gradient at once
    with_att(xyz, rgb).mean.square().sum().backward()
    assert with_att.attention.to_v.weight.grad.abs().sum() > 0
    torch.nn.init.normal_(with_att.attention.to_v.weight, std=0.5)
    assert not torch.allclose(with_att(xyz, rgb).mean, b)


# ---------------------------------------------------------------- VAE head (Eq. 12)
def test_kl_matches_closed_form():
    mean = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    kl = DiagonalGaussian(mean, logvar).kl()
    want = 0.5 * (0.25 + 1 - 1 - 0) + 0.5 * (1.0 + 4.0 - 1 - math.log(4.0))
    assert math.isclose(float(kl[0]), want, rel_tol=1e-6)
    assert float(DiagonalGaussian(torch.zeros(1, 3), torch.zeros(1, 3)).kl()[0]) == 0.0


def test_posterior_sampling_is_seeded():
    g = DiagonalGaussian(torch.zeros(2, 5), torch.zeros(2, 5))
    a = g.sample(torch.Generator().manual_seed(1))
    b = g.sample(torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------- guidance (Eq. 15)
def test_dual_guidance_matches_hand_computation():
    u, i, f = torch.tensor([1.0]), torch.tensor([3.0]), torch.tensor([4.0])
    # 1 + 5 * (3 - 1) + 1 * (4 - 3) = 12
    assert float(dual_guidance(u, i, f, scale_shape=1.0, scale_image=5.0)) == 12.0
    assert float(dual_guidance(u, i, f, scale_shape=2.0, scale_image=0.0)) == 3.0


def test_guided_forward_equals_three_separate_forwards():
    from gs_method_compress3d.model import Compress3D

    torch.manual_seed(0)
    model = Compress3D(CFG).eval()
    for p in model.unet.parameters():  # the zero-initialised output would hide differences
        p.data.normal_(0, 0.2)
    z = torch.randn(2, 3, 4, 8, 8)
    es, ep = torch.randn(2, 16), torch.randn(2, 16)
    with torch.no_grad():
        got = model.unet_guided(z, 500, model.guided_context(es, ep))
        t = torch.full((2,), 500)
        yes, no = torch.zeros(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
        f = lambda ds, di: model.unet(z, t, model.unet.context(es, ep, ds, di))  # noqa: E731
        want = dual_guidance(f(no, no), f(no, yes), f(yes, yes), 1.0, 5.0)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_guidance_masks_and_condition_dropout_rates():
    ds, di = guidance_drop_masks(2)
    assert ds.tolist() == [True, True, True, True, False, False]
    assert di.tolist() == [True, True, False, False, False, False]
    g = torch.Generator().manual_seed(0)
    s, i = condition_dropout(200_000, 0.05, 0.05, 0.05, generator=g)
    only_i, only_s, both = (i & ~s).float().mean(), (s & ~i).float().mean(), (s & i).float().mean()
    for rate in (only_i, only_s, both):
        assert abs(float(rate) - 0.05) < 0.003


# ---------------------------------------------------------------- diffusion pieces
def test_ddim_with_the_true_x0_recovers_it():
    sched = NoiseSchedule(1000, "cosine")
    x0 = torch.randn(3, 5)
    ts = ddim_timesteps(1000, 10)
    assert ts[0] == 900 and ts[-1] == 0 and len(ts) == 10
    x = sched.add_noise(x0, torch.randn(3, 5), torch.full((3,), ts[0]))
    for k, t in enumerate(ts):
        x = sched.ddim_step(x, t, ts[k + 1] if k + 1 < len(ts) else -1, x0=x0)
    torch.testing.assert_close(x, x0)


def test_prior_and_unet_shapes():
    prior = EmbeddingPrior(16, CFG.prior)
    e = torch.randn(3, 16)
    assert prior(e, torch.tensor([0, 10, 999]), e).shape == (3, 16)
    assert prior.sample(e, torch.Generator().manual_seed(0), steps=2).shape == (3, 16)
    unet = TriplaneUNet(4, 16, CFG.unet)
    ctx = unet.context(e, e)
    assert ctx.shape == (3, 2 * CFG.unet.context_tokens, 16 // CFG.unet.context_tokens)
    assert unet(torch.randn(3, 3, 4, 8, 8), torch.tensor([1, 2, 3]), ctx).shape == (3, 3, 4, 8, 8)


def test_prior_keeps_the_candidate_closest_to_the_image_embedding():
    torch.manual_seed(0)
    e = torch.randn(3, 16)
    one = EmbeddingPrior(16, CFG.prior.model_copy(update={"candidates": 1}))
    four = EmbeddingPrior(16, CFG.prior.model_copy(update={"candidates": 4}))
    four.load_state_dict(one.state_dict())
    # the four candidates of each image are the rows of one sample of batch [4 * 3]
    all_rows = one.sample(e.repeat(4, 1), torch.Generator().manual_seed(0), steps=2).view(4, 3, 16)
    kept = four.sample(e, torch.Generator().manual_seed(0), steps=2)
    best = (all_rows * e).sum(-1).argmax(0)
    torch.testing.assert_close(kept, all_rows[best, torch.arange(3)])
    assert kept.shape == (3, 16) and len(set(best.tolist())) > 1  # not always the first


def test_prior_loss_decreases():
    torch.manual_seed(0)
    prior = EmbeddingPrior(16, CFG.prior)
    es, ei = torch.randn(8, 16), torch.randn(8, 16)
    opt = torch.optim.Adam(prior.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = float(prior.loss(es, ei, generator=torch.Generator().manual_seed(0))["loss"].detach())
    for _ in range(40):
        loss = prior.loss(es, ei, generator=g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(prior.loss(es, ei, generator=torch.Generator().manual_seed(0))["loss"].detach())
    assert last < 0.7 * first


def test_contrastive_encoders_learn_to_retrieve():
    torch.manual_seed(0)
    enc = ProceduralContrastiveEncoders(CFG.embeddings)
    n = 6
    colours = torch.rand(n, 3)
    rgb = colours[:, :, None, None].expand(n, 3, 32, 32).contiguous()
    xyz = torch.randn(n, 64, 3) * 0.3
    prgb = colours[:, None, :].expand(n, 64, 3).contiguous()
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    first = float(enc.loss(rgb, xyz, prgb)["loss"].detach())
    for _ in range(60):
        loss = enc.loss(rgb, xyz, prgb)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(enc.loss(rgb, xyz, prgb)["loss"].detach()) < 0.5 * first
    with torch.no_grad():
        assert retrieval_accuracy(enc.image(rgb), enc.shape(xyz, prgb)) == 1.0


def test_openshape_order_view_pairs_then_shapes_to_frozen_images():
    torch.manual_seed(0)
    enc = ProceduralContrastiveEncoders(CFG.embeddings)
    n = 6
    colours = torch.rand(n, 3)
    views = [(colours * s)[:, :, None, None].expand(n, 3, 32, 32).contiguous() for s in (1, 0.9)]
    xyz = torch.randn(n, 64, 3) * 0.3
    prgb = colours[:, None, :].expand(n, 64, 3).contiguous()
    image_params = [*enc.image.parameters(), enc.view_log_scale]
    opt = torch.optim.Adam(image_params, lr=3e-3)
    first = float(enc.view_loss(*views)["view_contrastive"].detach())
    for _ in range(60):
        loss = enc.view_loss(*views)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(enc.view_loss(*views)["loss"].detach()) < 0.5 * first
    frozen = {k: v.clone() for k, v in enc.image.state_dict().items()}
    opt = torch.optim.Adam([*enc.shape.parameters(), enc.log_scale], lr=3e-3)
    for _ in range(60):
        terms = enc.loss(views[0], xyz, prgb, image_frozen=True)
        enc.zero_grad(set_to_none=True)
        terms["loss"].backward()
        assert all(p.grad is None for p in enc.image.parameters())  # targets, not trained
        opt.step()
    assert all(torch.equal(v, enc.image.state_dict()[k]) for k, v in frozen.items())
    with torch.no_grad():
        assert retrieval_accuracy(enc.image(views[1]), enc.shape(xyz, prgb)) == 1.0


# ---------------------------------------------------------------- Fréchet distance
def test_frechet_distance_closed_forms():
    from gs_method_compress3d.frechet import frechet_distance

    torch.manual_seed(0)
    a = torch.randn(4000, 3)
    assert frechet_distance(a, a) < 1e-8
    # equal covariances: the distance is the squared mean shift
    assert math.isclose(frechet_distance(a, a + torch.tensor([1.0, 2.0, 0.0])), 5.0, rel_tol=1e-6)
    # N(0, I) vs N(0, 4 I) in 3-D: 3 * (1 + 4 - 2 * 2) = 3
    assert abs(frechet_distance(a, 2 * torch.randn(4000, 3)) - 3.0) < 0.3


def test_logvar_init_sets_the_posterior_variance_at_start():
    torch.manual_seed(0)
    xyz = torch.rand(1, 200, 3) * 2 - 1
    rgb = torch.rand(1, 200, 3)
    torch.manual_seed(0)
    sharp = TriplaneEncoder(CFG.encoder.model_copy(update={"logvar_init": -6.0}), CFG.attention)
    torch.manual_seed(0)
    default = TriplaneEncoder(CFG.encoder, CFG.attention)
    a, b = sharp(xyz, rgb), default(xyz, rgb)
    torch.testing.assert_close(a.mean, b.mean)  # only the log-variance channels move
    assert float((a.logvar - b.logvar).mean()) == pytest.approx(
        -6.0 - float(CFG.encoder.logvar_init), abs=1e-4
    )

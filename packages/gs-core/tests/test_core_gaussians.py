import pytest
import torch

from gs_core import Gaussians, ValidationError
from gs_core.gaussians import SH_C0, rgb_to_sh0


def rand_gaussians(n=20, batch=(), degree=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = (degree + 1) ** 2
    q = torch.randn(*batch, n, 4, generator=g)
    return Gaussians(
        means=torch.randn(*batch, n, 3, generator=g),
        quats=q / q.norm(dim=-1, keepdim=True),
        scales=torch.rand(*batch, n, 3, generator=g) + 0.01,
        opacities=torch.rand(*batch, n, generator=g),
        sh=torch.randn(*batch, n, k, 3, generator=g),
    )


def test_fields_and_properties():
    g = rand_gaussians(10, (2,), degree=2)
    assert g.batch_shape == (2,) and g.num_gaussians == 10 and g.sh_degree == 2 and len(g) == 10
    assert g[1].batch_shape == () and g[1].num_gaussians == 10


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("means", torch.zeros(5, 2), "Gaussians.means"),
        ("quats", torch.zeros(5, 3), "Gaussians.quats"),
        ("scales", -torch.ones(5, 3), "positive"),
        ("opacities", torch.full((5,), 1.5), "[0, 1]"),
        ("sh", torch.zeros(5, 3, 3), "K = (degree+1)^2"),
        ("means", torch.full((5, 3), float("nan")), "finite"),
    ],
)
def test_validation_names_field(field, value, needle):
    kwargs = dict(
        means=torch.zeros(5, 3),
        quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(5, 1),
        scales=torch.ones(5, 3),
        opacities=torch.ones(5),
        sh=torch.zeros(5, 1, 3),
    )
    kwargs[field] = value
    with pytest.raises(ValidationError) as e:
        Gaussians(**kwargs)
    assert needle in str(e.value)


def test_raw_roundtrip_and_gradients():
    g = rand_gaussians(30, (3,), degree=3)
    raw = {k: v.clone().requires_grad_(True) for k, v in g.to_raw().items()}
    h = Gaussians.from_raw(**raw)
    for f in ("means", "quats", "scales", "opacities", "sh"):
        torch.testing.assert_close(getattr(h, f), getattr(g, f), atol=1e-5, rtol=1e-5)
    (h.scales.sum() + h.opacities.sum() + h.quats[..., 0].sum()).backward()
    assert raw["log_scales"].grad is not None and raw["opacity_logits"].grad is not None
    torch.testing.assert_close(raw["log_scales"].grad, h.scales.detach())


def test_select_concat_and_colors():
    g = rand_gaussians(10, degree=0)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4]] = True
    s = g.select(mask)
    assert s.num_gaussians == 2
    torch.testing.assert_close(s.means, g.means[[1, 4]])
    c = Gaussians.concat([g, rand_gaussians(5, degree=2)])
    assert c.num_gaussians == 15 and c.sh_degree == 2
    torch.testing.assert_close(c.sh[:10, 1:], torch.zeros(10, 8, 3))
    rgb = torch.rand(4, 3)
    f = Gaussians.from_colors(torch.zeros(4, 3), rgb, 0.03)
    torch.testing.assert_close(f.colors, rgb)
    torch.testing.assert_close(rgb_to_sh0(rgb) * SH_C0 + 0.5, rgb)
    assert torch.equal(f.quats, torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1))


def test_to_detach_keep_type():
    g = rand_gaussians(4)
    assert g.to(torch.float64).dtype == torch.float64
    assert not g.detach().means.requires_grad
    with pytest.raises(ValidationError):
        Gaussians.concat([rand_gaussians(3, (2,)), rand_gaussians(3, (3,))])

"""LPIPS against the lpips package's own computation, on identical random backbone weights."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import FileFormatError, ValidationError, WeightsNotFoundError


def _random_torchvision(net: str, seed: int):
    import torchvision

    torch.manual_seed(seed)
    return (
        torchvision.models.vgg16(weights=None)
        if net == "vgg"
        else torchvision.models.alexnet(weights=None)
    )


def _features_state(model) -> dict:
    """The backbone part of a torchvision state dict (what LPIPS uses; keeps test files small)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith("features.")}


def _reference_lpips(net: str, model, monkeypatch):
    """lpips.LPIPS built by the package itself, its trunk taken from ``model`` (its own slicing
    code), its linear layers loaded from the wheel by its own loader."""
    import lpips
    import lpips.pretrained_networks as pn

    monkeypatch.setattr(pn.tv, "vgg16" if net == "vgg" else "alexnet", lambda *a, **k: model)
    return lpips.LPIPS(
        net=net, version="0.1", pretrained=True, pnet_rand=False, verbose=False
    ).eval()


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_equals_package_on_same_weights(net, tmp_path, monkeypatch):
    from gs_losses import LPIPS

    tv_model = _random_torchvision(net, seed=0)
    path = tmp_path / f"{net}.pth"
    torch.save(_features_state(tv_model), path)
    ours = LPIPS(net, backbone_weights=path)
    ref = _reference_lpips(net, tv_model, monkeypatch)

    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    y = (x + 0.2 * torch.randn(2, 3, 32, 32, generator=g)).clamp(0, 1)
    got = ours(x, y)
    with torch.no_grad():
        expected = ref(x, y, normalize=True).flatten()
    assert got.shape == (2,)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert (got > 0).all()
    assert torch.allclose(ours(x, x), torch.zeros(2), atol=1e-7)

    # Differentiable in the input, frozen weights, and stays in eval mode under .train().
    ours.train()
    xg = x.clone().requires_grad_(True)
    ours(xg, y).sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in ours.parameters())
    assert torch.allclose(ours(x, y), got)


def test_lpips_missing_backbone_names_file_and_remedy(tmp_path, monkeypatch):
    from gs_losses import LPIPS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GS3D_LPIPS_VGG_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError) as e:
        LPIPS("vgg")
    msg = str(e.value)
    assert (
        "vgg16-397923af.pth" in msg and "GS3D_LPIPS_VGG_WEIGHTS" in msg and "IMAGENET1K_V1" in msg
    )
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        LPIPS("alex", backbone_weights=tmp_path / "nope.pth")


def test_lpips_finds_weights_in_torch_hub_cache_and_rejects_foreign_files(tmp_path, monkeypatch):
    from gs_losses import LPIPS
    from gs_losses.perceptual import default_backbone_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GS3D_LPIPS_ALEX_WEIGHTS", raising=False)
    cache = default_backbone_path("alex")
    assert cache.parent == tmp_path / "hub" / "checkpoints"
    cache.parent.mkdir(parents=True)
    torch.save(_features_state(_random_torchvision("alex", seed=2)), cache)
    LPIPS("alex")  # found in the cache
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(FileFormatError, match="not torchvision alexnet"):
        LPIPS("alex", backbone_weights=tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FileFormatError, match="not a readable"):
        LPIPS("alex", backbone_weights=tmp_path / "junk.pth")
    with pytest.raises(ValidationError, match="'vgg' or 'alex'"):
        LPIPS("squeeze")


def test_lpips_metric_plugin(tmp_path, monkeypatch):
    import gs_losses.plugin as plugin
    from gs_core.plugins.registry import Registry

    reg = Registry(discover=False)
    reg.register_plugin_module(plugin, "losses", "gs-losses", "0.1.0")
    specs = reg._metrics
    assert {"lpips_vgg", "lpips_alex"} <= set(specs)
    spec = specs["lpips_alex"]
    assert spec.higher_is_better is False

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("GS3D_LPIPS_ALEX_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError):
        spec.factory(torch.device("cpu"))

    path = tmp_path / "alex.pth"
    torch.save(_features_state(_random_torchvision("alex", seed=3)), path)
    monkeypatch.setenv("GS3D_LPIPS_ALEX_WEIGHTS", str(path))
    fn = spec.factory(torch.device("cpu"))
    x = torch.rand(2, 32, 32, 3)
    y = torch.rand(2, 32, 32, 3)
    from gs_losses import LPIPS

    direct = LPIPS("alex", backbone_weights=path)(x.permute(0, 3, 1, 2), y.permute(0, 3, 1, 2))
    assert torch.allclose(fn(x, y), direct)


@pytest.mark.parametrize("net, enum_name", [("vgg", "VGG16_Weights"), ("alex", "AlexNet_Weights")])
def test_backbone_urls_match_torchvision(net, enum_name):
    import torchvision

    from gs_losses.perceptual import backbone_weights_url

    assert backbone_weights_url(net) == getattr(torchvision.models, enum_name).IMAGENET1K_V1.url


def test_missing_lpips_weights_are_reported_without_importing_torchvision(tmp_path):
    """A metric whose weights are absent is reported at once: no torchvision / lpips import."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from gs_core.errors import WeightsNotFoundError\n"
        "from gs_losses.plugin import lpips_metric_factory\n"
        "try:\n"
        "    lpips_metric_factory('vgg')('cpu')\n"
        "except WeightsNotFoundError as e:\n"
        "    print('missing', 'torchvision' in sys.modules, 'lpips' in sys.modules)\n"
    )
    env = {**__import__("os").environ, "TORCH_HOME": str(tmp_path), "GS3D_LPIPS_VGG_WEIGHTS": ""}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.strip() == "missing False False", r.stdout + r.stderr

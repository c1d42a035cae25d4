"""gs-priors registers its priors with the gs3d plugin registry through its entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_entry_point_registers_stable_diffusion_and_zero123():
    from gs_core.plugins.registry import Registry
    from gs_priors.stable_diffusion import DEFAULT_MODEL_ID as SD_ID
    from gs_priors.zero123 import DEFAULT_MODEL_ID as Z123_ID

    registry = Registry()
    entries = {e.name: e for e in registry.entry_points()}
    assert entries["priors"].distribution == "gs-priors"
    sd = registry.get_prior("stable-diffusion")
    z123 = registry.get_prior("zero123")
    assert (sd.default_model_id, z123.default_model_id) == (SD_ID, Z123_ID)
    assert sd.distribution == z123.distribution == "gs-priors"
    assert sd.paper and z123.paper and sd.summary and z123.summary
    assert not [f for f in registry.failures if f.distribution == "gs-priors"]


def test_entry_point_registers_zero123plus_and_imagedream():
    from gs_core.plugins.registry import Registry
    from gs_priors.imagedream import DEFAULT_MODEL_ID as ID_ID
    from gs_priors.zero123plus import DEFAULT_MODEL_ID as ZPP_ID

    registry = Registry()
    zpp = registry.get_prior("zero123plus")
    dream = registry.get_prior("imagedream")
    assert (zpp.default_model_id, dream.default_model_id) == (ZPP_ID, ID_ID)
    assert zpp.distribution == dream.distribution == "gs-priors"
    assert zpp.paper and dream.paper


def test_spec_builds_the_prior_from_a_directory(tmp_path):
    from gs_core.plugins.registry import Registry
    from gs_priors import StableDiffusionGuidance, Zero123Guidance
    from gs_priors.tiny import save_tiny_stable_diffusion, save_tiny_zero123

    registry = Registry()
    sd = registry.get_prior("stable-diffusion").build(save_tiny_stable_diffusion(tmp_path / "sd"))
    assert isinstance(sd, StableDiffusionGuidance) and sd.device.type == "cpu"
    z = registry.get_prior("zero123").build(save_tiny_zero123(tmp_path / "z"), variant="zero123")
    assert isinstance(z, Zero123Guidance) and z.variant == "zero123"


def test_registering_imports_no_diffusers():
    code = (
        "import sys\n"
        "from gs_core.plugins.registry import Registry\n"
        "from gs_priors import plugin\n"
        "r = Registry(discover=False)\n"
        "r.register_plugin_module(plugin, 'priors', 'gs-priors', '0.1.0')\n"
        "assert sorted(r.priors()) == ['imagedream', 'stable-diffusion', 'zero123', 'zero123plus'], r.priors()\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

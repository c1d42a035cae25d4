"""Diffusion priors through the ``gs3d_register_priors`` hook: lookup, duplicates, broken
plugins and ``gs3d plugins`` listing them, with fake plugins (no model is loaded)."""

from __future__ import annotations

import json
import sys
import types

import pytest
from typer.testing import CliRunner

from gs_core.errors import GS3DError, PluginError
from gs_core.plugins import registry as registry_module
from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.registry import PluginEntry, Registry
from gs_core.plugins.specs import PriorSpec


def _prior(name: str, model_id: str | None = "org/model") -> PriorSpec:
    return PriorSpec(
        name=name,
        summary=f"the {name} prior",
        factory=lambda model_id, **kw: ("built", name, model_id, kw),
        default_model_id=model_id,
        paper="Someone et al. 2024",
    )


def _module(*specs: PriorSpec, fail: bool = False) -> types.ModuleType:
    m = types.ModuleType("fake_prior_plugin")

    @hookimpl
    def gs3d_register_priors(register):
        if fail:
            raise RuntimeError("boom in the priors hook")
        for s in specs:
            register(s)

    m.gs3d_register_priors = gs3d_register_priors
    return m


def test_register_get_and_build_a_prior():
    reg = Registry(discover=False)
    reg.register_plugin_module(_module(_prior("sd"), _prior("z123")), "p", "dist-priors", "2.0.1")
    spec = reg.get_prior("sd")
    assert spec.distribution == "dist-priors" and spec.version == "2.0.1"
    assert spec.build(half=True) == ("built", "sd", "org/model", {"half": True})
    assert spec.build("./local-dir")[2] == "./local-dir"
    assert list(reg.priors()) == ["sd", "z123"]
    with pytest.raises(GS3DError, match=r"unknown prior 'nope' \(available: sd, z123\)"):
        reg.get_prior("nope")


def test_a_prior_without_default_model_id_needs_one():
    reg = Registry(discover=False)
    reg.register_plugin_module(_module(_prior("bare", model_id=None)), "p", "dist-bare", "1")
    with pytest.raises(GS3DError, match=r"prior 'bare' \(dist-bare\) has no default model id"):
        reg.get_prior("bare").build()


def test_duplicate_prior_names_both_distributions():
    reg = Registry(discover=False)
    reg.register_plugin_module(_module(_prior("sd")), "a", "dist-one", "1")
    with pytest.raises(PluginError, match="duplicate prior name 'sd'.*dist-one and dist-two"):
        reg.register_plugin_module(_module(_prior("sd")), "b", "dist-two", "1")
    with pytest.raises(PluginError, match="duplicate prior name 'sd'"):
        reg.get_prior("sd")


def test_register_checks_the_spec_type():
    reg = Registry(discover=False)
    m = types.ModuleType("wrong_type")

    @hookimpl
    def gs3d_register_priors(register):
        register({"name": "sd"})

    m.gs3d_register_priors = gs3d_register_priors
    with pytest.raises(PluginError, match="expected a PriorSpec, got dict"):
        reg.register_plugin_module(m, "w", "dist-w", "1")


def test_broken_prior_plugins_are_reported_not_raised(monkeypatch):
    reg = Registry(discover=False)
    reg._entries = [
        PluginEntry("good", "fake_good_priors", "dist-good", "0.1"),
        PluginEntry("hookfail", "fake_bad_priors", "dist-bad", "0.1"),
        PluginEntry("missing", "gs3d_no_such_priors_xyz", "dist-missing", "0.1"),
    ]
    monkeypatch.setitem(sys.modules, "fake_good_priors", _module(_prior("sd")))
    monkeypatch.setitem(sys.modules, "fake_bad_priors", _module(fail=True))
    assert reg.get_prior("sd").distribution == "dist-good"
    assert list(reg.priors()) == ["sd"]
    errs = {f.name: f.error for f in reg.failures}
    assert "boom in the priors hook" in errs["hookfail"]
    assert errs["missing"].startswith("ModuleNotFoundError")
    with pytest.raises(
        GS3DError, match="prior 'missing' is installed \\(dist-missing\\) but failed"
    ):
        reg.get_prior("missing")


def test_one_module_may_provide_methods_priors_and_commands(monkeypatch):
    """A module named by several entry points is registered with pluggy once."""
    from gs_core.config import Config
    from gs_core.plugins.specs import MethodSpec

    m = _module(_prior("sd"))

    @hookimpl
    def gs3d_register_methods(register):
        register(MethodSpec("both", "x", Config, factory=lambda c: None, core_api="1.0"))

    @hookimpl
    def gs3d_register_commands(cli):
        @cli.command("both-cmd")
        def both_cmd():
            """A command from the same module."""

    m.gs3d_register_methods = gs3d_register_methods
    m.gs3d_register_commands = gs3d_register_commands
    monkeypatch.setitem(sys.modules, "fake_all_in_one", m)
    reg = Registry(discover=False)
    reg._entries = [PluginEntry("both", "fake_all_in_one", "dist-all", "3.0")]
    reg._command_entries = [PluginEntry("both-cmd", "fake_all_in_one", "dist-all", "3.0")]
    assert reg.load_command("both-cmd").name == "both-cmd"
    assert reg.get_method("both").distribution == "dist-all"
    assert reg.get_prior("sd").distribution == "dist-all"
    assert not reg.failures


def test_gs3d_plugins_lists_priors(monkeypatch):
    from gs_core.cli.main import app

    reg = Registry(discover=False)
    reg._entries = [PluginEntry("priors", "fake_listed_priors", "dist-priors", "0.3")]
    reg._command_entries = []
    monkeypatch.setitem(sys.modules, "fake_listed_priors", _module(_prior("sd")))
    monkeypatch.setattr(registry_module, "_REGISTRY", reg)
    r = CliRunner().invoke(app, ["plugins", "--json", "--check"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["priors"]["sd"] == {
        "distribution": "dist-priors",
        "version": "0.3",
        "summary": "the sd prior",
        "default_model_id": "org/model",
    }
    row = next(p for p in out["plugins"] if p["name"] == "priors")
    assert row["status"] == "loaded" and row["priors"] == ["sd"]
    r = CliRunner().invoke(app, ["plugins", "--check"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "priors: sd" in r.stdout

import types

import pytest

from gs_core.errors import GS3DError, PluginError
from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.registry import PluginEntry, Registry
from gs_core.plugins.specs import MethodSpec
from gs_core.testing import MethodConformanceTests  # noqa: F401  (import works without plugins)


def _spec(name, api="1.0"):
    from gs_core.config import Config

    return MethodSpec(
        name=name, summary="x", config_class=Config, factory=lambda c: None, core_api=api
    )


def _module(*specs, fail=False):
    m = types.ModuleType("fake_plugin")

    @hookimpl
    def gs3d_register_methods(register):
        if fail:
            raise RuntimeError("boom in hook")
        for s in specs:
            register(s)

    m.gs3d_register_methods = gs3d_register_methods
    return m


def test_register_and_get():
    reg = Registry(discover=False)
    reg.register_plugin_module(_module(_spec("a")), "a", "dist-a", "1.2.3")
    spec = reg.get_method("a")
    assert spec.distribution == "dist-a" and spec.version == "1.2.3"
    with pytest.raises(GS3DError, match="unknown method 'zzz'.*available: a"):
        reg.get_method("zzz")


def test_duplicates_name_both_distributions():
    reg = Registry(discover=False)
    reg.register_plugin_module(_module(_spec("a")), "a", "dist-one", "1")
    with pytest.raises(PluginError, match="dist-one and dist-two"):
        reg.register_plugin_module(_module(_spec("a")), "a2", "dist-two", "1")
    with pytest.raises(PluginError, match="duplicate method name 'a'"):
        reg.get_method("a")


def test_incompatible_api_refused():
    reg = Registry(discover=False)
    with pytest.raises(PluginError, match="built for gs-core API 2.0"):
        reg.register_plugin_module(_module(_spec("a", api="2.0")), "a", "d", "1")


def test_broken_plugins_are_reported_not_raised(monkeypatch):
    reg = Registry(discover=False)
    reg._entries = [
        PluginEntry("broken", "gs3d_no_such_module_xyz", "dist-broken", "0.1"),
        PluginEntry("hookfail", "fake_hookfail", "dist-hook", "0.1"),
        PluginEntry(
            "off", "whatever", "dist-off", "0.1", disabled="disabled by GS3D_DISABLE_PLUGINS"
        ),
    ]
    import sys

    monkeypatch.setitem(sys.modules, "fake_hookfail", _module(fail=True))
    reg.load_all()
    errs = {f.name: f.error for f in reg.failures}
    assert errs["broken"].startswith("ModuleNotFoundError")
    assert "boom in hook" in errs["hookfail"]
    assert "off" not in errs
    assert "psnr" in reg.metrics()  # built-ins still work
    with pytest.raises(GS3DError, match="failed to load"):
        reg.get_method("broken")
    with pytest.raises(GS3DError, match="GS3D_DISABLE_PLUGINS"):
        reg.get_method("off")


def test_env_filters(monkeypatch):
    monkeypatch.setenv("GS3D_DISABLE_PLUGINS", "gs-losses")
    entries = {e.distribution: e for e in Registry().entry_points()}
    if "gs-losses" in entries:
        assert entries["gs-losses"].disabled
    monkeypatch.delenv("GS3D_DISABLE_PLUGINS")
    monkeypatch.setenv("GS3D_LOAD_PLUGINS", "nothing-matches")
    assert all(e.disabled for e in Registry().entry_points())

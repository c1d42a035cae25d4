"""What the plugin declares: its entry point, and a registry listing that imports nothing heavy."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points


def test_entry_point_names_the_plugin_module():
    eps = [ep for ep in entry_points(group="gs3d") if ep.name == "geco"]
    assert len(eps) == 1 and eps[0].value == "gs_method_geco.plugin"


def test_registering_imports_neither_diffusers_nor_the_model():
    code = (
        "import sys\n"
        "from gs_core.plugins.registry import get_registry\n"
        "spec = get_registry().get_method('geco')\n"
        "assert spec.distribution == 'gs-method-geco' and spec.stage_names == ('vsd', 'joint')\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'gs_method_geco.model') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)

"""Dependencies run one way: plugins -> gs-priors / gs-losses / gs-nets / gs-encoders -> gs3d-core.

Read from the source (every ``import`` and ``from ... import`` in a package, lazy ones inside
functions included), so a shortcut that would only fail once installed alone shows up here.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("gs_core", "gs_nets", "gs_encoders", "gs_losses", "gs_priors")
# What each library may import of the others. gs-losses' SDS / VSD run over gs-priors' priors
# (its optional `guidance` extra); gs-encoders' image-token encoder builds gs-nets' SmallViT for
# the offline world (gs-nets imports no encoder, so no cycle).
ALLOWED = {
    "gs_core": set(),
    "gs_nets": {"gs_core"},
    "gs_encoders": {"gs_core", "gs_nets"},
    "gs_priors": {"gs_core"},
    "gs_losses": {"gs_core", "gs_priors"},
}


def _source_dir(module: str) -> Path:
    hits = list(ROOT.glob(f"packages/*/src/{module}"))
    assert len(hits) == 1, f"{module}: expected one source folder, found {hits}"
    return hits[0]


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # lazy-import tables ({"Name": "gs_nets.module"}) and importlib.import_module("...")
            head = node.value.split(".")[0]
            if "." in node.value and " " not in node.value and head.startswith(("gs_", "gs3d")):
                roots.add(head)
    return roots


@pytest.mark.parametrize("module", LIBRARIES)
def test_library_imports_only_lower_layers(module):
    src = _source_dir(module)
    bad = []
    for path in sorted(src.rglob("*.py")):
        for root in _imported_roots(path):
            is_ours = (
                root in LIBRARIES or root.startswith("gs_method_") or root == "gs3d_pixel_cloud"
            )
            if is_ours and root != module and root not in ALLOWED[module]:
                bad.append(f"{path.relative_to(ROOT)} imports {root}")
    assert not bad, "imports against the layering: " + "; ".join(bad)


def test_no_library_imports_a_method_plugin():
    bad = []
    for module in LIBRARIES:
        for path in _source_dir(module).rglob("*.py"):
            if any(r.startswith("gs_method_") for r in _imported_roots(path)):
                bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"libraries importing a method plugin: {bad}"


# Every method plugin, by folder: each imports only its own package and the libraries its
# pyproject declares, so its wheel installs alone (the *_packaging tests prove it for real).
PLUGINS = (
    "gs-method-agg",
    "gs-method-compress3d",
    "gs-method-dd3g",
    "gs-method-dreamgaussian",
    "gs-method-geco",
)


def _distribution(module: str) -> str:
    return "gs3d-core" if module == "gs_core" else module.replace("_", "-")


def _declared(plugin: str) -> set[str]:
    """Distributions a plugin's pyproject requires, its optional extras included."""
    project = tomllib.loads((ROOT / "plugins" / plugin / "pyproject.toml").read_text())["project"]
    reqs = [*project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in reqs}


def test_every_plugin_is_checked():
    folders = sorted(
        p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file()
    )
    assert folders == sorted(PLUGINS), f"add new plugins to PLUGINS: {folders}"


@pytest.mark.parametrize("plugin", PLUGINS)
def test_plugin_imports_only_declared_libraries(plugin):
    own = plugin.replace("-", "_")
    declared = _declared(plugin)
    bad = []
    for path in sorted((ROOT / "plugins" / plugin / "src").rglob("*.py")):
        for root in _imported_roots(path):
            if root == own:
                continue
            if root.startswith("gs_method_") or root == "gs3d_pixel_cloud":
                bad.append(f"{path.relative_to(ROOT)} imports another plugin, {root}")
            elif root in LIBRARIES and _distribution(root) not in declared:
                bad.append(f"{path.relative_to(ROOT)} imports {root}, undeclared in pyproject.toml")
    assert not bad, "; ".join(bad)

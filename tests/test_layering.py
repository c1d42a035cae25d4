"""Dependencies run one way: plugins -> gs-priors / gs-losses / gs-nets / gs-encoders -> gs3d-core.

Read from the source (every ``import`` and ``from ... import`` in a package, lazy ones inside
functions included), so a shortcut that would only fail once installed alone shows up here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("gs_core", "gs_nets", "gs_encoders", "gs_losses", "gs_priors")
# What each library may import of the others. gs-losses' SDS / VSD run over gs-priors' priors
# (its optional `guidance` extra).
ALLOWED = {
    "gs_core": set(),
    "gs_nets": {"gs_core"},
    "gs_encoders": {"gs_core"},
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

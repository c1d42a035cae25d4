"""Installing the AGG or Compress3D plugin pulls no diffusion or CLIP stack.

AGG needs neither diffusion priors nor CLIP, Compress3D neither (its own triplane diffusion is
plain torch; the paper's OpenCLIP encoder is its optional `paper` extra); diffusers, transformers and peft come with
gs-priors (``gs-losses[guidance]``), open_clip with ``gs-encoders[clip]``. The closure is read
from uv.lock, the resolution every install from this workspace uses: a package's dependencies,
plus the optional dependencies of exactly the extras that something requests.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"diffusers", "transformers", "peft", "open-clip-torch"}


def _lock_packages() -> dict[str, list[dict]]:
    lock = ROOT / "uv.lock"
    if not lock.is_file():
        pytest.skip("no uv.lock in this checkout")
    by_name: dict[str, list[dict]] = defaultdict(list)
    for pkg in tomllib.loads(lock.read_text())["package"]:
        by_name[pkg["name"]].append(pkg)
    return by_name


def install_closure(root: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Names of every package installing ``root[extras]`` brings in (dependency groups excluded)."""
    packages = _lock_packages()
    if root not in packages:
        raise AssertionError(f"uv.lock has no package {root!r}")
    seen: set[tuple[str, str | None]] = set()
    stack: list[tuple[str, str | None]] = [(root, None), *((root, e) for e in extras)]
    while stack:
        name, extra = stack.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for pkg in packages.get(name, []):
            deps = (
                pkg.get("dependencies", [])
                if extra is None
                else pkg.get("optional-dependencies", {}).get(extra, [])
            )
            for dep in deps:
                stack.append((dep["name"], None))
                stack.extend((dep["name"], e) for e in dep.get("extra", []))
    return {name for name, _ in seen}


def test_agg_plugin_installs_no_diffusion_or_clip_stack():
    closure = install_closure("gs-method-agg")
    assert {"gs3d-core", "gs-nets", "gs-encoders", "gs-losses", "torch"} <= closure
    heavy = sorted(closure & HEAVY)
    assert not heavy, (
        f"installing gs-method-agg pulls {heavy} (see `uv tree --package gs-method-agg`)"
    )
    assert "gs-priors" not in closure


def test_compress3d_plugin_installs_no_diffusion_or_clip_stack():
    closure = install_closure("gs-method-compress3d")
    assert {"gs3d-core", "gs-nets", "gs-encoders", "torch"} <= closure
    heavy = sorted(closure & HEAVY)
    assert not heavy, (
        f"installing gs-method-compress3d pulls {heavy} "
        "(see `uv tree --package gs-method-compress3d`)"
    )
    assert not closure & {"gs-priors", "gs-losses"}
    # ... and its `paper` extra is what brings OpenCLIP in
    assert "open-clip-torch" in install_closure("gs-method-compress3d", ("paper",))


def test_the_extras_bring_them_in():
    # The walk follows extras: without this, an empty intersection above would prove nothing.
    assert {"diffusers", "transformers", "peft"} <= install_closure("gs-losses", ("guidance",))
    assert {"diffusers", "transformers", "peft"} <= install_closure("gs-priors")
    assert "open-clip-torch" in install_closure("gs-encoders", ("clip",))
    assert not install_closure("gs-losses") & HEAVY
    assert not install_closure("gs-encoders") & HEAVY

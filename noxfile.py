"""Isolated checks of every gs3d package.

Each ``tests-<package>`` session installs only that package (with its declared extras) and its
test tools from the frozen ``uv.lock`` into its own virtualenv and runs its tests, so an
undeclared dependency fails there. ``wheels`` builds every wheel and imports it in a fresh
venv, ``integration`` runs the cross-package tests in ``tests/``, and ``lint`` runs ruff.

    uv run nox -l                 # list sessions
    uv run nox -s tests-gs-nets   # one package
    uv run nox                    # everything (what CI runs)
"""

from __future__ import annotations

import glob
import os
import tomllib
from pathlib import Path

import nox

# Bytecode caches make the many subprocess-based tests (DDP, kill-and-resume, isolated venvs)
# import torch and diffusers several times faster; some shells switch them off.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
# optional extras a package's own tests exercise: gs3d-core's resolver tests build a
# huggingface_hub cache and its densification test runs gsplat's pure-torch DefaultStrategy on
# CPU and its meshing tests run marching cubes, decimation and UV unwrapping; gs-encoders' CLIP
# tests need open_clip; gs-losses' SDS / VSD run over gs-priors' priors
TEST_EXTRAS = {
    "gs3d-core": ["cuda", "hub", "mesh", "viewer", "fast-cpu"],
    "gs-encoders": ["clip"],
    "gs-losses": ["guidance"],
    "gs-method-dreamgaussian": ["mesh"],
    # Compress3D's paper embedders are tested failing clearly without the OpenCLIP weights
    "gs-method-compress3d": ["paper"],
}


def _members() -> dict[str, Path]:
    out = {}
    for pattern in ("packages/*/pyproject.toml", "plugins/*/pyproject.toml"):
        for f in sorted(glob.glob(str(ROOT / pattern))):
            name = tomllib.loads(Path(f).read_text())["project"]["name"]
            out[name] = Path(f).parent
    return out


MEMBERS = _members()


def _sync(session: nox.Session, *args: str) -> None:
    session.run_install(
        "uv", "sync", "--frozen", *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        silent=True,
    )  # fmt: skip


def _pytest_args(session: nox.Session) -> list[str]:
    return list(session.posargs) or ["-q", "-p", "no:cacheprovider"]


for _name, _path in MEMBERS.items():

    @nox.session(name=f"tests-{_name}", python=PYTHON)
    def _tests(session: nox.Session, name: str = _name, path: Path = _path) -> None:
        extras = [a for e in TEST_EXTRAS.get(name, []) for a in ("--extra", e)]
        _sync(session, "--package", name, "--group", "test", *extras)
        tests = path / "tests"
        if not any(tests.glob("test_*.py")):
            session.skip(f"{name} has no tests yet")
        session.run("python", "-m", "pytest", str(tests.relative_to(ROOT)), *_pytest_args(session))


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """Cross-package tests: plugin installation into isolated venvs, packaging, the CLI."""
    _sync(session, "--all-packages", "--all-extras")
    session.run("python", "-m", "pytest", "tests", *_pytest_args(session))


@nox.session(python=PYTHON)
def wheels(session: nox.Session) -> None:
    """Build every package's wheel and import it in a fresh venv (no workspace sources)."""
    dist = Path(session.create_tmp()) / "dist"
    session.run(
        "uv", "build", "--all-packages", "--wheel", "-o", str(dist), silent=True, external=True
    )
    built = sorted(dist.glob("*.whl"))
    session.log(f"built {len(built)} wheels: {', '.join(p.name for p in built)}")
    constraints = Path(session.create_tmp()) / "constraints.txt"
    session.run(
        "uv", "export", "--frozen", "--all-packages", "--no-hashes", "--no-emit-workspace",
        "--no-header", "-o", str(constraints), silent=True, external=True,
    )  # fmt: skip
    session.install("-c", str(constraints), *map(str, built))
    # the import name is the wheel's top-level package (gs3d-core installs gs_core)
    modules = [_top_level_package(p) for p in built]
    code = ";".join(f"import {m}" for m in modules) + f";print('imported', {modules!r})"
    # run from a temporary directory so the workspace sources cannot shadow the wheels
    with session.chdir(session.create_tmp()):
        session.run("python", "-c", code)
        session.run("gs3d", "--help", silent=True)
        session.run("gs3d", "plugins", "--check")


def _top_level_package(wheel: Path) -> str:
    import zipfile

    tops = {
        n.split("/")[0]
        for n in zipfile.ZipFile(wheel).namelist()
        if "/" in n and not n.split("/")[0].endswith((".dist-info", ".data"))
    }
    if len(tops) != 1:
        raise ValueError(f"{wheel.name}: expected one top-level package, found {sorted(tops)}")
    return tops.pop()


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


if os.environ.get("CI"):
    nox.options.reuse_existing_virtualenvs = False

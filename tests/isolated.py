"""Isolated virtualenvs built from wheels, as users get them (helpers of the integration tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def uv() -> list[str]:
    exe = shutil.which("uv")
    return [exe] if exe else [sys.executable, "-m", "uv"]


def run(cmd, check_rc: bool = True, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run`` with output captured as text; a non-zero exit fails with both streams
    unless ``check_rc`` is false."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, **kw)
    if check_rc and r.returncode != 0:
        raise AssertionError(
            f"command failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stdout}\n{r.stderr}"
        )
    return r


class IsolatedEnv:
    """A fresh virtualenv outside the workspace with wheels installed, pinned by uv.lock."""

    def __init__(self, root: Path):
        self.root = root
        self.venv = root / "venv"
        self.dist = root / "dist"
        self.dist.mkdir(parents=True, exist_ok=True)
        run([*uv(), "venv", "-q", "--python", sys.executable, str(self.venv)])
        self.constraints = root / "constraints.txt"
        run(
            [*uv(), "export", "--frozen", "--all-packages", "--no-hashes", "--no-emit-workspace",
             "--no-header", "-o", str(self.constraints)],
            cwd=ROOT,
        )  # fmt: skip

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def build(self, project: Path) -> Path:
        before = set(self.dist.glob("*.whl"))
        run([*uv(), "build", "-q", "--wheel", "-o", str(self.dist), str(project)], cwd=ROOT)
        new = set(self.dist.glob("*.whl")) - before
        assert new, f"no wheel built for {project}"
        return new.pop()

    def install(self, *targets) -> None:
        run(
            [
                *uv(),
                "pip",
                "install",
                "-q",
                "--python",
                self.python,
                "-c",
                str(self.constraints),
                *map(str, targets),
            ]
        )

    def run(self, *args, check: bool = True, **kw) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env.update(kw.pop("env", {}))
        r = subprocess.run(
            list(args), capture_output=True, text=True, cwd=kw.pop("cwd", self.root), env=env, **kw
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
            )
        return r


def plugin_env(root: Path, plugin: str, packages: tuple[str, ...], extra: str = ""):
    """An :class:`IsolatedEnv` in ``root`` holding the wheels of ``packages`` (folders under
    ``packages/``) and of the method ``plugin`` (a folder under ``plugins/``, installed with
    ``extra`` such as ``"[mesh]"``); returns ``(env, plugin_wheel)``."""
    env = IsolatedEnv(root)
    wheels = [env.build(ROOT / "packages" / p) for p in packages]
    wheel = env.build(ROOT / "plugins" / plugin)
    env.install(*wheels, f"{wheel}{extra}")
    return env, wheel


def internal_requirements(wheel: Path, expected: set[str]) -> list[str]:
    """Check that ``wheel`` is publishable (licence, version 0.1.0, every gs3d dependency pinned
    to the 0.1 series, exactly the ``expected`` gs3d distributions) and return the
    ``Requires-Dist`` lines of its gs3d dependencies."""
    import zipfile

    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names)
    assert "License-Expression: Apache-2.0" in meta and "Version: 0.1.0" in meta
    requires = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:")]
    internal = [r for r in requires if r.split()[1].startswith(("gs3d-core", "gs-"))]
    found = {r.split()[1].split("[")[0].split("<")[0].split(">")[0] for r in internal}
    assert found == expected, found
    assert all(">=0.1" in r and "<0.2" in r for r in internal), internal
    return internal


def listed_and_generated(env: IsolatedEnv, method: str, tmp: Path, *args: str) -> dict:
    """``gs3d plugins`` lists ``method`` from its own distribution (0.1.0), and ``gs3d generate
    IMAGE --method METHOD -o tmp/out.ply --preset tiny --json ARGS`` works on a tiny image;
    returns the command's JSON."""
    import json

    listing = json.loads(env.run(env.bin("gs3d"), "plugins", "--json").stdout)
    row = next(p for p in listing["plugins"] if p["name"] == method)
    assert row["distribution"] == f"gs-method-{method}" and row["version"] == "0.1.0"
    image = tmp / "in.png"
    draw = (
        "from gs_core.imaging import save_image; from gs_core.testing import tiny_rgba_images; "
        f"save_image('{image}', tiny_rgba_images(1, 32)[0].permute(1, 2, 0).numpy())"
    )
    env.run(env.python, "-c", draw)
    r = env.run(
        env.bin("gs3d"), "generate", str(image), "--method", method, "-o", str(tmp / "out.ply"),
        "--preset", "tiny", "--json", *args, cwd=tmp,
    )  # fmt: skip
    return json.loads(r.stdout)


def ply_count(env: IsolatedEnv, path: Path) -> int:
    """Gaussians in a PLY, read inside the isolated env."""
    code = f"from gs_core.io import load_ply; print(load_ply('{path}').num_gaussians)"
    return int(env.run(env.python, "-c", code).stdout)

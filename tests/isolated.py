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


def run(cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    r = subprocess.run(cmd, **kw)
    if kw.get("check_rc", True) and r.returncode != 0:
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

"""The command-line arguments every teacher probe script shares (``scripts/condition_use.py``,
``scripts/guidance_effect.py``): which pack and prior, where its objects are made, how many, and
where the results JSON goes, with one clear error for a missing pack or an existing ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path

PRIORS = ("zero123", "zero123plus", "imagedream")


def probe_parser(description: str, work_help: str, objects_help: str) -> argparse.ArgumentParser:
    """A parser with ``--pack --prior --work --out --overwrite --objects --seed --threads``; the
    script adds its own arguments."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--pack", type=Path, required=True, help="a teacher (packed file or directory)")
    p.add_argument("--prior", choices=PRIORS, required=True)
    p.add_argument("--work", type=Path, required=True, help=work_help)
    p.add_argument("--out", type=Path, default=None, help="the results JSON (default: print only)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier --out")
    p.add_argument("--objects", type=int, default=16, help=objects_help)
    p.add_argument("--seed", type=int, default=0, help="the batches' and the noise's seed")
    p.add_argument("--threads", type=int, default=2)
    return p


def check_probe_paths(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Exit through ``p.error`` (status 2, one line) when ``--pack`` is missing or ``--out``
    exists without ``--overwrite``."""
    from gs_core.errors import GS3DError
    from gs_core.io.atomic import check_overwrite

    if not a.pack.exists():
        p.error(f"--pack: {a.pack} does not exist")
    if a.out is not None:
        try:
            check_overwrite(a.out, a.overwrite, directory=False)
        except GS3DError as e:
            p.error(f"--out: {e}")

"""Where each file of a comparison report lives, relative to the report folder.

``index.html``, ``results.json`` and ``results.md`` at the top; the pictures under
``images/<object>/``: ``input.png``, ``ground_truth.png`` and one ``<n>-<method>.png`` per
method (``n`` its position, so two names that read the same once made file-safe stay apart).
The page refers to them relative to itself, so the folder can be moved or served as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from gs_core.io.atomic import check_overwrite

PAGE_NAME = "index.html"
JSON_NAME = "results.json"
MARKDOWN_NAME = "results.md"
IMAGES_DIR = "images"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("-", name).strip(".-") or "x"


def input_image(object_id: str) -> str:
    return f"{IMAGES_DIR}/{_safe(object_id)}/input.png"


def ground_truth_image(object_id: str) -> str:
    return f"{IMAGES_DIR}/{_safe(object_id)}/ground_truth.png"


def method_image(object_id: str, index: int, method: str) -> str:
    return f"{IMAGES_DIR}/{_safe(object_id)}/{index}-{_safe(method)}.png"


def check_report_dir(out: str | Path, overwrite: bool) -> Path:
    """Refuse, before any work, an ``out`` that is a file, or a non-empty folder without
    ``overwrite`` (an empty folder is taken as it is)."""
    out = Path(out)
    empty = out.is_dir() and not out.is_symlink() and not any(out.iterdir())
    check_overwrite(out, overwrite or empty, directory=True)
    return out


__all__ = [
    "IMAGES_DIR",
    "JSON_NAME",
    "MARKDOWN_NAME",
    "PAGE_NAME",
    "check_report_dir",
    "ground_truth_image",
    "input_image",
    "method_image",
]

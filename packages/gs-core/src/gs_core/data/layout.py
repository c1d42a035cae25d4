"""Dataset root layout: object folders plus split and category lists.

::

    ROOT/
      dataset.json               # optional: how the dataset was made
      splits/train.txt           # one object id (= folder name) per line; '#' starts a comment
      splits/val.txt
      splits/test.txt
      categories/<name>.txt      # per-category lists, same format
      <object id>/transforms.json, images/..., points.ply, gaussians.ply

The split ``"all"`` means every folder holding a ``transforms.json``, with or without split files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gs_core.data.transforms import TRANSFORMS_NAME
from gs_core.errors import FileFormatError, GS3DError
from gs_core.io.atomic import atomic_write_text

SPLITS_DIR = "splits"
CATEGORIES_DIR = "categories"
DATASET_META = "dataset.json"
STANDARD_SPLITS = ("train", "val", "test")


def _read_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(path, f"not a UTF-8 text list ({e})") from None
    ids = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(check_object_id(line, path, f"line {n}"))
    return ids


def check_object_id(object_id: str, source: str | Path, where: str = "object id") -> str:
    """``object_id`` if it names a folder directly under the dataset root.

    Split and category lists name object folders; a path (``a/b``, ``../x``, ``/abs``) would
    reach outside the dataset, so it is refused with one line naming ``source``.
    """
    if (
        not object_id
        or object_id in (".", "..")
        or any(c in object_id for c in "/\\\0")
        or Path(object_id).is_absolute()
    ):
        raise FileFormatError(
            source, f"{where}: expected an object id (a folder name), got {object_id!r}"
        )
    return object_id


def _write_list(path: Path, ids: Iterable[str]) -> None:
    atomic_write_text(path, "".join(f"{i}\n" for i in ids))


def list_objects(root: str | Path) -> list[str]:
    """Ids of all object folders (those holding a ``transforms.json``) under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileFormatError(root, "dataset root not found (expected a folder of object folders)")
    return sorted(p.name for p in root.iterdir() if (p / TRANSFORMS_NAME).is_file())


def available_splits(root: str | Path) -> list[str]:
    d = Path(root) / SPLITS_DIR
    return sorted(p.stem for p in d.glob("*.txt")) if d.is_dir() else []


def categories(root: str | Path) -> dict[str, list[str]]:
    """Category name -> object ids, from ``categories/*.txt``."""
    d = Path(root) / CATEGORIES_DIR
    if not d.is_dir():
        return {}
    return {p.stem: _read_list(p) for p in sorted(d.glob("*.txt"))}


def read_split(
    root: str | Path, split: str, categories_filter: Iterable[str] | None = None
) -> list[str]:
    """Object ids of ``split`` (``"all"`` = every object), optionally only of some categories.

    Raises :class:`FileFormatError` when the split file is missing, lists no objects, or names
    objects that have no folder with a ``transforms.json``.
    """
    root = Path(root)
    present = set(list_objects(root))
    if split == "all":
        ids = sorted(present)
        source = root
        if not ids:
            raise FileFormatError(
                root, f"no object folders (folders holding {TRANSFORMS_NAME}) in the dataset root"
            )
    else:
        source = root / SPLITS_DIR / f"{split}.txt"
        if not source.is_file():
            avail = ", ".join(available_splits(root)) or "none"
            raise FileFormatError(
                source,
                f"split file not found (splits in this dataset: {avail}; or use split 'all')",
            )
        ids = _read_list(source)
        if not ids:
            raise FileFormatError(source, f"split '{split}' lists no objects")
        missing = [i for i in ids if i not in present]
        if missing:
            more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
            raise FileFormatError(
                source,
                f"lists {len(missing)} object(s) without a folder holding {TRANSFORMS_NAME} in {root}: "
                f"{', '.join(missing[:3])}{more}",
            )
    if categories_filter is not None:
        wanted = list(categories_filter)
        cats = categories(root)
        unknown = [c for c in wanted if c not in cats]
        if unknown:
            raise GS3DError(
                f"{root}: unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
                f"(available: {', '.join(cats) or 'none; the dataset has no categories/ lists'})"
            )
        keep = set().union(*(cats[c] for c in wanted))
        ids = [i for i in ids if i in keep]
        if not ids:
            raise FileFormatError(
                source, f"split '{split}' has no objects of categories {', '.join(wanted)}"
            )
    return ids


def write_splits(root: str | Path, splits: dict[str, list[str]]) -> None:
    """Write ``splits/<name>.txt`` for each entry (atomically, one file at a time)."""
    for name, ids in splits.items():
        _write_list(Path(root) / SPLITS_DIR / f"{name}.txt", ids)


def write_categories(root: str | Path, cats: dict[str, list[str]]) -> None:
    for name, ids in cats.items():
        _write_list(Path(root) / CATEGORIES_DIR / f"{name}.txt", ids)


def read_dataset_meta(root: str | Path) -> dict[str, Any]:
    p = Path(root) / DATASET_META
    if not p.is_file():
        return {}
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(p, f"not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise FileFormatError(p, "expected a JSON object")
    return meta


def write_dataset_meta(root: str | Path, meta: dict[str, Any]) -> None:
    atomic_write_text(Path(root) / DATASET_META, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def split_ids(ids: list[str], fractions: dict[str, float], seed: int = 0) -> dict[str, list[str]]:
    """Deterministically shuffle ``ids`` and cut them into named parts by ``fractions``.

    The last part takes the remainder, so every id lands in exactly one split.
    """
    import numpy as np

    if not ids:
        raise GS3DError("split_ids: no object ids to split")
    total = sum(fractions.values())
    if total <= 0 or any(f < 0 for f in fractions.values()):
        raise GS3DError(f"split fractions must be >= 0 with a positive sum, got {fractions}")
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [sorted(ids)[i] for i in order]
    out, start = {}, 0
    names = list(fractions)
    for k, name in enumerate(names):
        n = (
            len(ids) - start
            if k == len(names) - 1
            else int(round(len(ids) * fractions[name] / total))
        )
        out[name] = sorted(shuffled[start : start + n])
        start += n
    return out

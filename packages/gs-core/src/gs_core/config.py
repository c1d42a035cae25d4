"""Base class of every gs3d config: pydantic, strict about unknown fields, with named presets.

A component's config subclasses :class:`Config` and lists presets (``paper``, ``small``,
``tiny``, ...) as dicts of overrides; ``Cfg.preset("tiny")`` builds one, and
``cfg.with_overrides(["lr=1e-4", "model.depth=2"])`` applies ``key=value`` strings from the CLI.
Values are parsed as JSON where possible (never ``eval``), else taken as strings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pydantic

from gs_core.errors import FileFormatError, GS3DError
from gs_core.limits import (
    MAX_DEPTH,
    MAX_GAUSSIANS,
    MAX_POINTS,
    MAX_RESOLUTION,
    MAX_VIEWS,
    MAX_WIDTH,
)


def bounded_int(maximum: int, unit: str, minimum: int = 1) -> Any:
    """An ``int`` field type accepting ``minimum..maximum`` (``unit`` names what is counted in
    the error, e.g. ``"pixels"``). Use it for every field that sets the size of something
    allocated: ``resolution: bounded_int(MAX_RESOLUTION, "pixels") = 256``.
    """

    def check(value: int) -> int:
        if not minimum <= value <= maximum:
            raise ValueError(f"expected {minimum:,} to {maximum:,} {unit}, got {value:,}")
        return value

    return Annotated[int, pydantic.AfterValidator(check)]


# The size fields configs share.
Resolution = bounded_int(MAX_RESOLUTION, "pixels")
GaussianCount = bounded_int(MAX_GAUSSIANS, "Gaussians")
PointCount = bounded_int(MAX_POINTS, "points")
ViewCount = bounded_int(MAX_VIEWS, "views")
Width = bounded_int(MAX_WIDTH, "channels")
Depth = bounded_int(MAX_DEPTH, "layers")


class Config(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # name -> overrides of the defaults; subclasses fill this in.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        if name not in cls.presets:
            raise GS3DError(
                f"{cls.__name__}: unknown preset '{name}' (available: {', '.join(sorted(cls.presets)) or 'none'})"
            )
        data = _deep_merge(dict(cls.presets[name]), overrides)
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as e:
            raise GS3DError(f"{cls.__name__} preset '{name}': {_first_error(e)}") from None

    def with_overrides(self, items: list[str] | dict[str, Any]):
        """Return a copy with dotted ``key=value`` overrides applied and re-validated."""
        data = self.model_dump()
        pairs = items.items() if isinstance(items, dict) else (_split(s) for s in items)
        for key, value in pairs:
            node = data
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise GS3DError(
                        f"override '{key}': '{p}' is not a nested config of {type(self).__name__}"
                    )
                node = node[p]
            if parts[-1] not in node:
                raise GS3DError(f"override '{key}': {type(self).__name__} has no field '{key}'")
            node[parts[-1]] = value
        try:
            return type(self).model_validate(data)
        except pydantic.ValidationError as e:
            raise GS3DError(
                f"invalid override for {type(self).__name__}: {_first_error(e)}"
            ) from None

    def save_json(self, path: str | Path) -> None:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(path, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load_json(cls, path: str | Path):
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileFormatError(path, "file not found (expected a config.json)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise FileFormatError(path, f"not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise FileFormatError(path, f"expected a JSON object, got {type(raw).__name__}")
        raw.pop("_class_name", None)
        raw.pop("_gs3d_version", None)
        try:
            return cls.model_validate(raw)
        except pydantic.ValidationError as e:
            raise FileFormatError(path, f"invalid {cls.__name__}: {_first_error(e)}") from None


def _split(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise GS3DError(f"override '{item}': expected key=value")
    key, raw = item.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _deep_merge(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = _deep_merge(dict(base[k]), v)
        else:
            base[k] = v
    return base


def _first_error(e: pydantic.ValidationError) -> str:
    errs = e.errors()
    parts = []
    for err in errs[:3]:
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        msg = err["msg"].removeprefix("Value error, ")  # a validator's own sentence
        parts.append(f"field '{loc}': {msg}")
    more = f" (+{len(errs) - 3} more)" if len(errs) > 3 else ""
    return "; ".join(parts) + more

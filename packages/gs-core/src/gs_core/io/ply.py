"""INRIA 3DGS PLY files (the layout of the original 3D Gaussian Splatting code and its viewers).

One ``vertex`` element, binary little-endian float32 properties, in this order::

    x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 f_rest_0 .. f_rest_{3(K-1)-1} opacity
    scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3

with opacity stored as a logit, scales as logs, ``rot`` as a wxyz quaternion and ``f_rest``
channel-major (all R coefficients of bands >= 1, then all G, then all B). ``nx ny nz`` are zero.

Also: plain coloured point clouds (``x y z red green blue``), as the datasets store surface points.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from gs_core.errors import FileFormatError, ValidationError
from gs_core.gaussians import Gaussians
from gs_core.io.atomic import atomic_write_bytes, check_overwrite

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def _gaussian_property_names(k: int) -> list[str]:
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * (k - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return names


def _header(n: int, props: list[tuple[str, str]]) -> bytes:
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    lines += [f"property {t} {name}" for name, t in props]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")


def gaussians_to_ply_bytes(gaussians: Gaussians) -> bytes:
    """Serialise unbatched Gaussians ``[N, ...]`` to INRIA PLY bytes."""
    if gaussians.batch_shape:
        raise ValidationError(
            "save_ply(gaussians)",
            "unbatched Gaussians [N, ...] (index the batch first, e.g. gaussians[0])",
            f"batch shape {gaussians.batch_shape}",
        )
    g = gaussians.detach().to("cpu")
    n, k = g.num_gaussians, g.sh.shape[-2]
    raw = g.to(torch.float64).to_raw()
    sh = raw["sh"].numpy()
    cols = [
        raw["means"].numpy(),
        np.zeros((n, 3)),
        sh[:, 0, :],
        # channel-major: [N, K-1, 3] -> [N, 3, K-1] -> [N, 3(K-1)]
        sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1)),
        raw["opacity_logits"].numpy()[:, None],
        raw["log_scales"].numpy(),
        raw["quats"].numpy(),
    ]
    data = np.concatenate(cols, axis=1).astype("<f4")
    names = _gaussian_property_names(k)
    return _header(n, [(nm, "float") for nm in names]) + data.tobytes()


def save_ply(path: str | Path, gaussians: Gaussians, overwrite: bool = True) -> Path:
    """Write ``gaussians`` (unbatched) as an INRIA 3DGS PLY, atomically."""
    path = Path(path)
    check_overwrite(path, overwrite, directory=False)
    atomic_write_bytes(path, gaussians_to_ply_bytes(gaussians))
    return path


def read_ply_vertices(path: str | Path) -> np.ndarray:
    """Read the ``vertex`` element of a binary or ASCII PLY as a numpy structured array."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FileFormatError(path, "is a directory, expected a .ply file") from None
    if not blob.startswith(b"ply"):
        raise FileFormatError(path, "not a PLY file (it does not start with 'ply')")
    header, body = _split_header(path, blob)
    fmt = None
    elements: list[tuple[str, int, list[tuple[str, str]]]] = []
    for line in header[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            if fmt is not None:
                raise FileFormatError(path, "PLY header has more than one 'format' line")
            fmt = parts[1] if len(parts) >= 2 else ""
        elif parts[0] == "element":
            if len(parts) != 3 or not re.fullmatch(r"\d+", parts[2]):
                raise FileFormatError(
                    path, f"bad element line '{line}' (expected 'element NAME COUNT')"
                )
            if any(e[0] == parts[1] for e in elements):
                raise FileFormatError(path, f"PLY header declares element '{parts[1]}' twice")
            elements.append((parts[1], int(parts[2]), []))
        elif parts[0] == "property":
            if not elements:
                raise FileFormatError(path, f"property before any element: '{line}'")
            if len(parts) == 5 and parts[1] == "list":
                name, kind = parts[4], "list"
            elif len(parts) == 3 and parts[1] in _PLY_TYPES:
                name, kind = parts[2], parts[1]
            else:
                raise FileFormatError(path, f"unsupported property line '{line}'")
            el_name, _, props = elements[-1]
            if any(p == name for p, _ in props):
                raise FileFormatError(
                    path, f"PLY header repeats property '{name}' of element '{el_name}'"
                )
            props.append((name, kind))
        else:
            raise FileFormatError(path, f"unknown PLY header line '{line}'")
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise FileFormatError(path, f"unsupported PLY format '{fmt}'")
    if not elements or elements[0][0] != "vertex":
        raise FileFormatError(path, "expected 'vertex' as the first element of the PLY")
    _, n, props = elements[0]
    if not props:
        raise FileFormatError(path, "the vertex element declares no properties")
    if any(t == "list" for _, t in props):
        raise FileFormatError(path, "list properties in the vertex element are not supported")
    if fmt == "ascii":
        try:
            text = body.decode("ascii").split()
            vals = np.array(text[: n * len(props)], dtype=np.float64)
        except (UnicodeDecodeError, ValueError):
            raise FileFormatError(path, "ASCII PLY body holds non-numeric values") from None
        if vals.size < n * len(props):
            raise FileFormatError(
                path, f"truncated: expected {n} vertices with {len(props)} values each"
            )
        dt = np.dtype([(name, "f8") for name, _ in props])
        return np.rec.fromarrays(vals.reshape(n, len(props)).T, dtype=dt)
    order = "<" if fmt == "binary_little_endian" else ">"
    dt = np.dtype([(name, order + _PLY_TYPES[t]) for name, t in props])
    need = n * dt.itemsize
    if len(body) < need:
        raise FileFormatError(
            path,
            f"truncated: header declares {n} vertices ({need} bytes), file holds {len(body)} bytes",
        )
    return np.frombuffer(body, dtype=dt, count=n)


def _split_header(path: Path, blob: bytes) -> tuple[list[str], bytes]:
    """The header's lines (up to, not including, ``end_header``) and the body after it."""
    # The header ends at a line that is exactly 'end_header' (not a comment mentioning it).
    m = re.search(rb"(?:\r?\n)end_header[ \t]*(\r?\n)", blob)
    if m is None:
        raise FileFormatError(path, "PLY header has no 'end_header' line (truncated or not a PLY)")
    try:
        header = blob[: m.start()].decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise FileFormatError(path, "PLY header is not ASCII") from None
    return header, blob[m.end() :]


def load_ply(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Gaussians:
    """Read an INRIA 3DGS PLY into activated :class:`Gaussians` ``[N, ...]``.

    With ``dtype=torch.float64`` the activations are kept exact enough that ``save_ply``
    reproduces the file byte for byte.
    """
    path = Path(path)
    v = read_ply_vertices(path)
    names = set(v.dtype.names or ())
    n_rest = len([nm for nm in names if nm.startswith("f_rest_")])
    if n_rest % 3 or not math.isqrt(n_rest // 3 + 1) ** 2 == n_rest // 3 + 1:
        raise FileFormatError(
            path, f"{n_rest} f_rest_* properties; expected 3*((d+1)^2-1) for an SH degree d"
        )
    k = n_rest // 3 + 1
    required = [nm for nm in _gaussian_property_names(k) if nm not in ("nx", "ny", "nz")]
    missing = [nm for nm in required if nm not in names]
    if missing:
        raise FileFormatError(
            path,
            f"not a 3DGS PLY: missing vertex properties {missing[:8]}{' ...' if len(missing) > 8 else ''}",
        )
    n = len(v)

    def cols(keys: list[str]) -> torch.Tensor:
        if not keys:
            return torch.zeros((n, 0), dtype=torch.float64)
        return torch.from_numpy(np.stack([np.asarray(v[nm], dtype=np.float64) for nm in keys], 1))

    means = cols(["x", "y", "z"])
    f_dc = cols(["f_dc_0", "f_dc_1", "f_dc_2"])
    f_rest = cols([f"f_rest_{i}" for i in range(n_rest)]).reshape(n, 3, k - 1).transpose(1, 2)
    sh = torch.cat([f_dc[:, None, :], f_rest], 1)
    logit = cols(["opacity"])[:, 0]
    log_scales = cols(["scale_0", "scale_1", "scale_2"])
    quats = cols(["rot_0", "rot_1", "rot_2", "rot_3"])
    for name, t in (
        ("x/y/z", means),
        ("f_dc/f_rest", sh),
        ("opacity", logit),
        ("scale_*", log_scales),
        ("rot_*", quats),
    ):
        if not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).reshape(n, -1).any(1).sum())
            raise FileFormatError(path, f"{bad} Gaussians have NaN/Inf in '{name}'")
    if bool((quats.norm(dim=-1) == 0).any()):
        raise FileFormatError(
            path, "some Gaussians have an all-zero rotation quaternion (rot_0..3)"
        )
    try:
        g = Gaussians.from_raw(means, quats, log_scales, logit, sh)
    except ValidationError as e:
        raise FileFormatError(path, str(e)) from None
    return g.to(device=device, dtype=dtype)


# ---------------------------------------------------------------- point clouds
def save_point_cloud(
    path: str | Path, points: torch.Tensor | np.ndarray, colors=None, overwrite: bool = True
) -> Path:
    """Write ``points [N, 3]`` with optional ``colors [N, 3]`` in [0, 1] as a binary PLY."""
    path = Path(path)
    check_overwrite(path, overwrite, directory=False)
    pts = np.asarray(
        points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype="<f4"
    )
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValidationError("points", "shape [N, 3]", f"shape {pts.shape}")
    props = [("x", "float"), ("y", "float"), ("z", "float")]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        c = np.asarray(
            colors.detach().cpu() if isinstance(colors, torch.Tensor) else colors, dtype=np.float64
        )
        if c.shape != pts.shape:
            raise ValidationError("colors", f"shape {pts.shape}", f"shape {c.shape}")
        props += [("red", "uchar"), ("green", "uchar"), ("blue", "uchar")]
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rec = np.zeros(len(pts), dtype=np.dtype(fields))
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    if colors is not None:
        c8 = (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8)
        rec["red"], rec["green"], rec["blue"] = c8[:, 0], c8[:, 1], c8[:, 2]
    atomic_write_bytes(path, _header(len(pts), props) + rec.tobytes())
    return path


def load_point_cloud(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read ``points [N, 3]`` and ``colors [N, 3]`` in [0, 1] (None when the PLY has none)."""
    v = read_ply_vertices(path)
    names = set(v.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise FileFormatError(path, "point cloud PLY is missing x/y/z vertex properties")
    pts = torch.from_numpy(np.stack([np.asarray(v[a], np.float32) for a in "xyz"], 1))
    colors = None
    if {"red", "green", "blue"} <= names:
        raw = np.stack([np.asarray(v[a], np.float32) for a in ("red", "green", "blue")], 1)
        scale = 255.0 if v.dtype["red"].kind in "iu" else 1.0
        colors = torch.from_numpy(raw / scale)
    return pts, colors

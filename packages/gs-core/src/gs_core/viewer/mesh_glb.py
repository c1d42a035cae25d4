"""A mesh as the GLB the browser draws, with a matte material.

glTF's default material, used by a primitive that names none (trimesh writes none for vertex
colours), is fully metallic. A metal has no diffuse colour: lit by lights alone (the viewer
sets no environment map, whose prefiltering takes tens of seconds in a software-rendered
browser) it shows almost black. Every material here is made dielectric and rough instead, so
vertex colours and textures show as they are under the viewer's lights.

A texture is the colour of a gs3d mesh, so a textured material's base colour factor is set to
white: trimesh writes the grey diffuse of its simple material (0.4), which would darken it.
"""

from __future__ import annotations

import json
import struct

from gs_core.mesh import Mesh

_GLB_MAGIC = b"glTF"
_JSON_CHUNK = b"JSON"
_MATTE = {"metallicFactor": 0.0, "roughnessFactor": 0.9}


def matte_glb(mesh: Mesh) -> bytes:
    """GLB bytes of ``mesh`` (vertex colours or texture kept) whose materials are matte."""
    data = mesh.to_trimesh().export(file_type="glb")
    return _matte_materials(bytes(data))


def _matte_materials(glb: bytes) -> bytes:
    # A GLB is a 12-byte header (magic, version, length) and chunks of (length, type, data);
    # the first chunk is the JSON document, padded with spaces to a multiple of 4 bytes.
    magic, version, _ = struct.unpack_from("<4sII", glb, 0)
    json_len, json_type = struct.unpack_from("<I4s", glb, 12)
    if magic != _GLB_MAGIC or json_type != _JSON_CHUNK:
        raise ValueError("not a GLB with a leading JSON chunk")
    doc = json.loads(glb[20 : 20 + json_len])
    rest = glb[20 + json_len :]
    materials = doc.setdefault("materials", [])
    for material in materials:
        pbr = material.setdefault("pbrMetallicRoughness", {})
        for key, value in _MATTE.items():
            pbr.setdefault(key, value)
        if "baseColorTexture" in pbr:
            pbr["baseColorFactor"] = [1.0, 1.0, 1.0, 1.0]
    default = None
    for mesh in doc.get("meshes", []):
        for primitive in mesh.get("primitives", []):
            if "material" not in primitive:
                if default is None:
                    default = len(materials)
                    materials.append({"pbrMetallicRoughness": dict(_MATTE)})
                primitive["material"] = default
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<I4s", len(text), _JSON_CHUNK) + text + rest
    return struct.pack("<4sII", _GLB_MAGIC, version, 12 + len(body)) + body


__all__ = ["matte_glb"]

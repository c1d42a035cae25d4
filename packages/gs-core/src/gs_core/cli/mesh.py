"""``gs3d mesh``: a vertex-coloured triangle mesh from a 3DGS PLY, optionally scored against
the exact surface of the procedural object it was fitted to."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import DEVICE_HELP, threads_option
from gs_core.errors import GS3DError

# Formats Mesh.export writes as one self-contained file (a textured .gltf would need several).
MESH_SUFFIXES = (".glb", ".obj", ".ply")
# A 1024^3 float32 density grid is 4 GiB; finer grids are refused before allocating.
MAX_GRID = 1024
# Texture side limit: an 8192^2 float texture is already 768 MiB while baking.
MAX_TEXTURE = 8192
# Formats that can carry a baked texture.
TEXTURE_SUFFIXES = (".glb", ".obj")


def mesh_command(
    scene: Path = typer.Argument(..., help="A 3DGS .ply file (e.g. written by gs3d fit)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output mesh: .glb, .obj or .ply."),
    resolution: int = typer.Option(
        128, "--resolution", min=8, max=MAX_GRID, help="Density grid samples per axis."
    ),
    level: float = typer.Option(
        1.0, "--level", help="Iso-level of the opacity-weighted Gaussian density."
    ),
    faces: int = typer.Option(
        100_000, "--faces", min=4, help="Face budget; quadric decimation above it."
    ),
    texture: int | None = typer.Option(
        None,
        "--texture",
        min=8,
        max=MAX_TEXTURE,
        help="Unwrap UVs (xatlas) and bake a SIZE x SIZE texture from renders of the "
        "Gaussians (.glb: embedded; .obj: NAME.mtl + NAME.png beside it).",
    ),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="A procedural object folder (gs3d data procedural): report Chamfer distance, "
        "F-score and normal consistency against its exact surface.",
    ),
    samples: int = typer.Option(
        50_000,
        "--samples",
        min=100,
        max=100_000,  # the reference is sampled with 100,000 points
        help="Surface points per side for the --reference scores.",
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    threads: int | None = threads_option(),
    as_json: bool = typer.Option(
        False, "--json", help="Print the result as JSON on stdout (messages go to stderr)."
    ),
) -> None:
    """Extract a mesh from Gaussians (density grid, marching cubes, cleaning, decimation,
    vertex colours; with --texture also UVs and a baked texture) and write it as .glb, .obj
    or .ply."""
    import math
    import time

    from gs_core.cli.console import make_console, print_json
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.errors import FileFormatError, ValidationError
    from gs_core.io import check_overwrite, load_ply
    from gs_core.io.outputs import check_distinct_outputs

    # Everything the user can get wrong is refused before the grid is built.
    if scene.suffix.lower() != ".ply":
        raise GS3DError(f"{scene}: expected a 3DGS .ply file")
    if out.suffix.lower() not in MESH_SUFFIXES:
        raise GS3DError(
            f"-o/--out {out}: unsupported mesh format '{out.suffix}' "
            f"(expected {', '.join(MESH_SUFFIXES)})"
        )
    if texture is not None and out.suffix.lower() not in TEXTURE_SUFFIXES:
        raise GS3DError(
            f"-o/--out {out}: --texture needs {' or '.join(TEXTURE_SUFFIXES)} "
            f"(a '{out.suffix}' file holds no texture image)"
        )
    if not math.isfinite(level) or level <= 0:
        raise GS3DError(f"--level: expected a positive density level, got {level}")
    check_distinct_outputs({"-o/--out": out}, inputs={"SCENE": scene})
    check_overwrite(out, overwrite, directory=False)
    if not scene.is_file():
        raise GS3DError(f"{scene}: file not found")
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    ref = _load_reference(reference) if reference is not None else None

    from gs_core.meshing import gaussians_to_mesh

    g = load_ply(scene)
    if g.num_gaussians == 0:
        raise FileFormatError(scene, "no Gaussians to mesh")
    console = make_console()
    console.print(f"{scene}: {g.num_gaussians:,} Gaussians, meshing on {dev}")
    t0 = time.perf_counter()
    stages: dict[str, float] = {}
    try:
        mesh = gaussians_to_mesh(
            g.to(dev), resolution=resolution, level=level, faces=faces, timings=stages
        )
    except ValidationError as e:
        if e.field == "level":  # say which option to change, and to what range
            raise ValidationError("--level", e.expected, e.got) from None
        raise
    if texture is not None:
        from gs_core.meshing import bake_texture, unwrap_uv

        console.print(f"unwrapping UVs and baking a {texture}x{texture} texture")
        t1 = time.perf_counter()
        mesh = unwrap_uv(mesh)
        t2 = time.perf_counter()
        # Render size: DreamGaussian's 512 for its 1024 texture, smaller for small textures
        # (pixels no denser than texels), so a quick low-resolution bake stays quick.
        mesh = bake_texture(mesh, g.to(dev), size=texture, resolution=min(512, max(64, texture)))
        stages["uv"], stages["bake"] = t2 - t1, time.perf_counter() - t2
    seconds = time.perf_counter() - t0
    mesh = _cpu(mesh)
    mesh.export(out, overwrite=overwrite)
    console.print(
        f"wrote {out}: {mesh.num_vertices:,} vertices, {mesh.num_faces:,} faces "
        f"(grid {resolution}^3, level {level:g}) in {seconds:.1f} s"
    )
    result: dict = {
        "input": str(scene),
        "output": str(out),
        "num_gaussians": g.num_gaussians,
        "vertices": mesh.num_vertices,
        "faces": mesh.num_faces,
        "resolution": resolution,
        "level": level,
        "face_budget": faces,
        "texture": texture,
        "device": str(dev),
        "seconds": seconds,
        "stage_seconds": stages,
    }
    if ref is not None:
        from gs_core.evaluation.geometry import FSCORE_THRESHOLD, mesh_geometry_scores

        scores = mesh_geometry_scores(mesh, ref, FSCORE_THRESHOLD, samples=samples)
        console.print(
            f"against the exact surface of {reference.name}: Chamfer {scores['chamfer']:.4f} "
            f"(accuracy {scores['accuracy']:.4f}, completeness {scores['completeness']:.4f}), "
            f"F-score@{FSCORE_THRESHOLD:g} {scores['fscore']:.3f} "
            f"(precision {scores['precision']:.3f}, recall {scores['recall']:.3f}), "
            f"normal consistency {scores['normal_consistency']:.3f}"
        )
        result["reference"] = {
            "object": str(reference),
            "threshold": FSCORE_THRESHOLD,
            "samples": samples,
            **scores,
        }
    if as_json:
        print_json(result)


def _load_reference(path: Path):
    """The exact geometry of a procedural object folder, or one line naming --reference."""
    from gs_core.procedural.surface import procedural_reference

    if not path.is_dir():
        raise GS3DError(
            f"--reference {path}: expected a procedural object folder (with transforms.json)"
        )
    return procedural_reference(path)


def _cpu(mesh):
    """The mesh with every tensor on the CPU (the geometry scores and export run there)."""
    from gs_core.mesh import Mesh

    def cpu(t):
        return None if t is None else t.cpu()

    return Mesh(
        vertices=mesh.vertices.cpu(),
        faces=mesh.faces.cpu(),
        vertex_colors=cpu(mesh.vertex_colors),
        uvs=cpu(mesh.uvs),
        texture=cpu(mesh.texture),
    )


def register(app: typer.Typer) -> None:
    app.command("mesh")(mesh_command)

"""``gs3d data``: generate the procedural world, check a dataset, write split files."""

from __future__ import annotations

from pathlib import Path

import typer

from gs_core.cli.options import parse_floats
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION

data_app = typer.Typer(
    help="Multi-view datasets (transforms.json format): procedural generation, checks, splits.",
    no_args_is_help=True,
)


@data_app.command("procedural")
def procedural(
    out: Path = typer.Option(..., "--out", help="Dataset folder to create."),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="eval (the procedural-eval benchmark), eval-hard (asymmetric objects), small or tiny.",
    ),
    objects: int | None = typer.Option(None, "--objects", min=1, help="Number of objects [24]."),
    views: int | None = typer.Option(None, "--views", min=1, help="Random views per object [32]."),
    resolution: int | None = typer.Option(
        None,
        "--resolution",
        min=8,
        max=MAX_RESOLUTION,
        help="Image size in pixels [128].",
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed; the same seed gives the same bytes [0]."
    ),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated subset of categories."
    ),
    elevation: str | None = typer.Option(
        None, "--elevation", help="Elevation range 'low,high' in degrees [-30,30]."
    ),
    radius: float | None = typer.Option(None, "--radius", help="Camera distance [1.5]."),
    fov: float | None = typer.Option(
        None, "--fov", help="Vertical field of view in degrees [49.1]."
    ),
    split: str | None = typer.Option(
        None, "--split", help="auto (80/10/10 per category), train, val or test."
    ),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Processes (0: in process; default: cores)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Other config fields: key=value (repeatable)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an existing dataset folder."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Generate procedural objects rendered by exact ray casting (RGBA, depth, normals, points)."""
    from rich.console import Console

    from gs_core.procedural.generator import ProceduralConfig, generate

    cfg = ProceduralConfig.preset(preset) if preset else ProceduralConfig()
    given = {
        "objects": objects,
        "views": views,
        "resolution": resolution,
        "seed": seed,
        "radius": radius,
        "fov_deg": fov,
        "split": split,
        "categories": [c.strip() for c in categories.split(",") if c.strip()]
        if categories
        else None,
        "elevation_range": parse_floats(elevation, 2, "--elevation") if elevation else None,
    }
    cfg = cfg.with_overrides({k: v for k, v in given.items() if v is not None})
    if overrides:
        cfg = cfg.with_overrides(overrides)
    summary = generate(cfg, out, overwrite=overwrite, workers=workers, progress=not quiet)
    splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
    Console(markup=False).print(
        f"wrote {summary['objects']} objects / {summary['views']} views to {out} in {summary['seconds']:.1f} s "
        f"({summary['views_per_second']:.0f} views/s); splits: {splits}"
    )


@data_app.command("check")
def check(
    root: Path = typer.Argument(..., help="Dataset root (or one object folder)."),
    split: str = typer.Option("all", "--split", help="Split to check (all: every object)."),
    decode: bool = typer.Option(False, "--decode", help="Also decode every image (slower)."),
    alpha_from_background: str | None = typer.Option(
        None, "--alpha-from-background", help="r,g,b of a solid background for RGB images."
    ),
) -> None:
    """Validate transforms.json files (and optionally images); report the first problem clearly."""
    from rich.console import Console

    from gs_core.data.layout import available_splits, categories, read_split
    from gs_core.data.transforms import TRANSFORMS_NAME, read_transforms
    from gs_core.data.views import load_object_views

    bg = (
        parse_floats(alpha_from_background, 3, "--alpha-from-background")
        if alpha_from_background
        else None
    )
    console = Console(markup=False)  # paths and messages verbatim
    if (root / TRANSFORMS_NAME).is_file():
        dirs = [root]
    else:
        dirs = [root / i for i in read_split(root, split)]
    n_frames = 0
    sizes = set()
    for d in dirs:
        rec = read_transforms(d)
        n_frames += len(rec.frames)
        if decode:
            v = load_object_views(rec, None, alpha_from_background=bg)
            sizes.add((v.rgba.shape[2], v.rgba.shape[1]))
        else:
            sizes.add(rec.image_size(rec.frames[0]))
    console.print(f"{root}: {len(dirs)} object(s), {n_frames} views, sizes {sorted(sizes)}: OK")
    if len(dirs) > 1 or not (root / TRANSFORMS_NAME).is_file():
        cats = categories(root)
        console.print(
            f"splits: {', '.join(available_splits(root)) or 'none'}; categories: {len(cats)}"
        )


@data_app.command("split")
def split_cmd(
    root: Path = typer.Argument(..., help="Dataset root holding object folders."),
    val: float = typer.Option(0.05, "--val", min=0.0, max=1.0, help="Fraction for val."),
    test: float = typer.Option(0.05, "--test", min=0.0, max=1.0, help="Fraction for test."),
    seed: int = typer.Option(0, "--seed", help="Shuffle seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing split files."),
) -> None:
    """Write splits/{train,val,test}.txt for a dataset that has none (deterministic by seed)."""
    from rich.console import Console

    from gs_core.data.layout import SPLITS_DIR, list_objects, split_ids, write_splits
    from gs_core.io.atomic import check_overwrite

    for name in ("train", "val", "test"):
        check_overwrite(root / SPLITS_DIR / f"{name}.txt", overwrite)
    if val + test >= 1:
        raise GS3DError(f"--val {val} + --test {test} leaves nothing for train")
    ids = list_objects(root)
    if not ids:
        raise GS3DError(f"{root}: no object folders (folders holding transforms.json)")
    parts = split_ids(ids, {"val": val, "test": test, "train": 1 - val - test}, seed=seed)
    write_splits(root, parts)
    Console(markup=False).print(", ".join(f"{k}: {len(v)}" for k, v in parts.items()))


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

"""``gs3d demo``: run a method's bundled model on its bundled example objects, on the CPU.

For each example (a ``transforms.json`` object whose first frame is the input view) it writes the
generated Gaussians as ``OUT/<object>.ply``, a sheet ``OUT/sheets/<object>.png`` (every view's
ground truth above the prediction at the same camera, labelled), ``OUT/results.md`` /
``results.json`` (PSNR and SSIM against the ground-truth views, via the ``gs3d eval`` harness)
and one turntable GIF of all examples side by side at 256 px, then prints where everything is.

When the examples folder holds a ``reference.json`` (the bundled model's scores on every object
of the split the examples come from, under the demo's settings), the demo also says how its
examples relate to that split: the split's mean and each example's rank.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from gs_core.cli.options import BACKEND_HELP, PRESET_HELP, SET_HELP, threads_option
from gs_core.errors import GS3DError
from gs_core.limits import MAX_RESOLUTION

TURNTABLE_NAME = "turntable.gif"
TURNTABLE_FRAMES = 24
TURNTABLE_RESOLUTION = 256
REFERENCE_NAME = "reference.json"


def demo(
    out: Path = typer.Option(
        Path("demo"), "--out", help="Folder for the demo outputs (created when missing)."
    ),
    method: str = typer.Option(
        "agg", "--method", help="A registered method with bundled examples."
    ),
    checkpoint: str | None = typer.Option(
        None, "--checkpoint", help="Checkpoint (default: the bundled one)."
    ),
    preset: str | None = typer.Option(None, "--preset", help=PRESET_HELP),
    overrides: list[str] = typer.Option([], "--set", help=SET_HELP),
    resolution: int = typer.Option(
        128, "--resolution", min=16, max=MAX_RESOLUTION, help="Evaluation / render size."
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (or auto)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the files of an earlier demo in --out."
    ),
    threads: int | None = threads_option(),
) -> None:
    """Generate 3D Gaussians for the bundled examples and compare them with the ground truth."""
    import torch

    from gs_core.cli.console import make_console
    from gs_core.cli.method_loading import load_method_for_cli
    from gs_core.cli.options import check_backend
    from gs_core.cli.progress import progress
    from gs_core.data.layout import read_split
    from gs_core.devices import resolve_device, set_cpu_threads
    from gs_core.evaluation.harness import EvalConfig, evaluate, markdown_table
    from gs_core.evaluation.predictors import MethodPredictor
    from gs_core.evaluation.showcase import turntable_row
    from gs_core.imaging import save_animation
    from gs_core.io import save_ply
    from gs_core.io.atomic import atomic_write_text
    from gs_core.plugins.registry import get_registry
    from gs_core.rendering.turntable import check_turntable_path

    console = make_console()
    t0 = time.perf_counter()
    check_backend(backend)
    dev = resolve_device(device, field="--device")
    set_cpu_threads(threads)
    spec = get_registry().get_method(method)
    if not spec.examples_dir or not Path(spec.examples_dir).is_dir():
        raise GS3DError(
            f"method '{method}' ships no example inputs (MethodSpec.examples_dir is not set)"
        )
    check_demo_outputs(out, read_split(spec.examples_dir, "test"), overwrite)
    model = load_method_for_cli(
        console, method, checkpoint=checkpoint, preset=preset, overrides=overrides, device=dev
    )
    out.mkdir(parents=True, exist_ok=True)
    source = checkpoint or (f"preset {preset}" if preset else "bundled")
    predictor = MethodPredictor(model, label=f"{method} ({source})")
    generated = {}

    def predict_and_save(object_id: str, input_rgba: torch.Tensor):
        pred = predictor(object_id, input_rgba)
        if pred.gaussians is None:  # the demo writes PLYs; a mesh-only method has none
            raise GS3DError(
                f"method '{method}' produced no Gaussians for {object_id} (mesh-only output)"
            )
        path = save_ply(
            out / f"{object_id}.ply", pred.gaussians.detach().to("cpu"), overwrite=overwrite
        )
        generated[object_id] = (pred, path)
        console.print(
            f"  {object_id}: {pred.gaussians.num_gaussians} Gaussians in {pred.seconds:.2f} s -> {path}"
        )
        return pred

    console.print(f"gs3d demo: {method} on the examples in {spec.examples_dir}")
    cfg = EvalConfig(
        protocol="all",
        frame=spec.output_frame,
        resolution=resolution,
        metrics=["psnr", "ssim"],
        sheets=False,
        backend=backend,
    )
    report = evaluate(
        predict_and_save,
        spec.examples_dir,
        "test",
        cfg,
        out=out,
        overwrite=overwrite,
        device=dev,
        label=predictor.label,
        progress=lambda k, n, oid: console.print(f"[{k + 1}/{n}] {oid}"),
    )
    bundled = checkpoint is None and preset is None
    reference = read_reference(Path(spec.examples_dir)) if bundled else None
    relation = reference_lines(report, reference) if reference is not None else []
    write_sheets(out, report, generated, spec, resolution, backend, method)
    ids = list(generated)
    with progress(console, "rendering turntable", TURNTABLE_FRAMES * len(ids)) as update:
        frames = turntable_row(
            [generated[o][0].gaussians.detach().to("cpu") for o in ids],
            ids,
            frames=TURNTABLE_FRAMES,
            resolution=TURNTABLE_RESOLUTION,
            elevation=15.0,
            backend=backend,
            progress=update,
        )
    gif = save_animation(check_turntable_path(out / TURNTABLE_NAME, overwrite), frames, fps=12)
    if relation:
        text = (out / "results.md").read_text(encoding="utf-8")
        atomic_write_text(out / "results.md", text + "\n" + "\n".join(relation) + "\n")

    print(markdown_table(report))
    mean = report["mean"]
    psnr = mean.get("psnr", {}).get("all")
    ssim = mean.get("ssim", {}).get("all")
    console.print(
        f"\nPSNR {psnr:.2f} dB, SSIM {ssim:.3f} against the procedural ground truth "
        f"({report['num_objects']} objects, every held-out view at {resolution}x{resolution})"
    )
    for line in relation:
        console.print(line)
    console.print(f"PLYs: {', '.join(str(p) for _, p in generated.values())}")
    console.print(f"sheets: {out / 'sheets'}/  (ground truth above the prediction, per view)")
    console.print(f"turntable: {gif} ({len(ids)} objects, {TURNTABLE_RESOLUTION} px each)")
    console.print(f"report: {out / 'results.md'}; total {time.perf_counter() - t0:.1f} s")


def write_sheets(out: Path, report: dict, generated: dict, spec, resolution: int, backend: str,
                 method: str) -> None:  # fmt: skip
    """One labelled sheet per example: ground truth above the prediction at every view."""
    from gs_core.evaluation.showcase import comparison_sheet, comparison_views
    from gs_core.imaging import save_image

    for obj in report["objects"]:
        oid = obj["object_id"]
        g = generated[oid][0].gaussians.detach().to("cpu")
        targets = [i for idx in obj["targets"].values() for i in idx]
        gt, pred, headers = comparison_views(
            g, Path(spec.examples_dir) / oid, obj["input_index"], targets,
            frame=spec.output_frame, resolution=resolution, backend=backend,
        )  # fmt: skip
        sc = obj["scores"]
        caption = (
            f"{oid}: PSNR {sc['psnr']['all']:.2f} dB, SSIM {sc['ssim']['all']:.3f} over the "
            f"{len(targets)} novel views; {g.num_gaussians:,} Gaussians"
        )
        label = f"{method} (pred.)"
        sheet = comparison_sheet(gt, pred, headers, ("ground truth", label), caption)
        save_image(out / "sheets" / f"{oid}.png", sheet, overwrite=True)


def read_reference(examples_dir: Path) -> dict | None:
    """``reference.json`` of the examples folder, or ``None`` when there is none."""
    import json

    from gs_core.errors import FileFormatError

    path = examples_dir / REFERENCE_NAME
    if not path.is_file():
        return None
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
        ok = isinstance(ref["objects"], dict) and all(
            isinstance(v["psnr"], int | float) for v in ref["objects"].values()
        )
        float(ref["mean"]["psnr"])
        float(ref["mean"]["ssim"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise FileFormatError(
            path, f"expected {{'mean': {{'psnr', 'ssim'}}, 'objects': {{id: {{'psnr'}}}}}} ({e})"
        ) from None
    if not ok:
        raise FileFormatError(path, "'objects' must map object ids to {'psnr': number}")
    return ref


def reference_lines(report: dict, reference: dict) -> list[str]:
    """How the examples relate to the split they come from (its mean, their ranks)."""
    objects = reference["objects"]
    n = len(objects)
    order = sorted(objects, key=lambda o: objects[o]["psnr"])
    ranks = [
        f"{o['object_id']} {order.index(o['object_id']) + 1}"
        for o in report["objects"]
        if o["object_id"] in objects
    ]
    mean = reference["mean"]
    here = report["mean"]["psnr"]["all"]
    where = reference.get("dataset", "the split")
    return [
        f"The {report['num_objects']} examples average {here:.2f} dB; the same model averages "
        f"{mean['psnr']:.2f} dB / SSIM {mean['ssim']:.3f} over all {n} objects of {where}.",
        f"Their PSNR ranks among those {n} (1 = lowest): {', '.join(ranks)}.",
    ]


def demo_outputs(out: Path, object_ids: list[str]) -> list[Path]:
    """Every file ``gs3d demo`` writes into ``out`` for these example objects."""
    per_object = [
        p for oid in object_ids for p in (out / f"{oid}.ply", out / "sheets" / f"{oid}.png")
    ]
    return [*per_object, out / "results.json", out / "results.md", out / TURNTABLE_NAME]


def check_demo_outputs(out: Path, object_ids: list[str], overwrite: bool) -> None:
    """Before any work: ``out`` must be a folder (or not exist yet), and without ``overwrite``
    none of the demo's files may be in it already."""
    if out.exists() and not out.is_dir():
        raise GS3DError(f"--out {out}: expected a folder for the demo outputs, found a file")
    if overwrite:
        return
    existing = [p for p in demo_outputs(out, object_ids) if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise GS3DError(
            f"--out {out}: holds the outputs of an earlier demo ({existing[0].name}{more}); "
            "pass --overwrite to replace them, or choose another folder"
        )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

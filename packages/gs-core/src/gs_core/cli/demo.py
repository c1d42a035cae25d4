"""``gs3d demo``: run a method's bundled model on its bundled example objects, on the CPU.

For each example (a ``transforms.json`` object whose first frame is the input view) it writes the
generated Gaussians as ``OUT/<object>.ply``, a contact sheet ``OUT/sheets/<object>.png`` (input,
ground truth and novel-view renders), ``OUT/results.md`` / ``results.json`` (PSNR and SSIM
against the ground-truth views, via the ``gs3d eval`` harness) and a turntable GIF of the first
object, then prints where everything is.
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
    from gs_core.io import save_ply
    from gs_core.plugins.registry import get_registry
    from gs_core.rendering.turntable import write_turntable

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
        sheets=True,
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
    first = next(iter(generated))
    with progress(console, "rendering turntable", TURNTABLE_FRAMES) as update:
        gif = write_turntable(
            generated[first][0].gaussians,
            out / TURNTABLE_NAME,
            frames=TURNTABLE_FRAMES,
            resolution=resolution,
            elevation=15.0,
            backend=backend,
            overwrite=overwrite,
            progress=update,
        )

    print(markdown_table(report))
    mean = report["mean"]
    psnr = mean.get("psnr", {}).get("all")
    ssim = mean.get("ssim", {}).get("all")
    console.print(
        f"\nPSNR {psnr:.2f} dB, SSIM {ssim:.3f} against the procedural ground truth "
        f"({report['num_objects']} objects, every held-out view at {resolution}x{resolution})"
    )
    console.print(f"PLYs: {', '.join(str(p) for _, p in generated.values())}")
    console.print(f"contact sheets: {out / 'sheets'}/  (input | ground truth | renders)")
    console.print(f"turntable: {gif}")
    console.print(f"report: {out / 'results.md'}; total {time.perf_counter() - t0:.1f} s")


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

"""Build ``gs3d demo``'s bundled examples from ``procedural-eval`` and the reference they are
compared with.

Each example keeps six views of one ``procedural-eval`` object (``gs3d data procedural --preset
eval``): the input (azimuth 0, elevation 0), the ring views at azimuths 72, 144, 216 and 288,
and the first Zero123++ view (azimuth 30, elevation 30). ``--reference`` scores the bundled
model on every object of the split reduced the same way, with the demo's settings (protocol
``all``, 128 px, torch renderer), and writes ``examples/reference.json``: the 24-object mean
and each object's scores, which ``gs3d demo`` prints its three examples against.

    gs3d data procedural --preset eval --out /tmp/procedural-eval
    python3 plugins/gs-method-agg/scripts/make_examples.py /tmp/procedural-eval \\
        --objects chair_00017 lamp_00014 snowman_00003 --reference
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

# (group, azimuth, elevation) of the kept frames, input first.
KEPT = [
    ("input", 0.0, 0.0),
    ("ring15", 72.0, 0.0),
    ("ring15", 144.0, 0.0),
    ("ring15", 216.0, 0.0),
    ("ring15", 288.0, 0.0),
    ("zero123pp", 30.0, 30.0),
]
DEMO_RESOLUTION = 128


def reduce_object(src: Path, dst: Path) -> None:
    """Copy the ``KEPT`` frames of one object folder into ``dst`` (images renumbered)."""
    meta = json.loads((src / "transforms.json").read_text())
    frames = []
    for group, az, el in KEPT:
        match = [
            f
            for f in meta["frames"]
            if f.get("group") == group
            and abs(f["azimuth"] - az) < 1e-3
            and abs(f["elevation"] - el) < 1e-3
        ]
        if not match:
            raise SystemExit(f"{src / 'transforms.json'}: no {group} frame at az {az}, el {el}")
        frames.append(match[0])
    (dst / "images").mkdir(parents=True, exist_ok=True)
    kept = []
    for i, f in enumerate(frames):
        name = f"images/{i:03d}.png"
        shutil.copyfile(src / f["file_path"], dst / name)
        f = {k: v for k, v in f.items() if not k.endswith("_file_path")}
        kept.append({**f, "file_path": name})
    top = {k: v for k, v in meta.items() if k not in ("frames", "depth_unit_scale_factor")}
    (dst / "transforms.json").write_text(json.dumps({**top, "frames": kept}, indent=1) + "\n")


def write_split(root: Path, ids: list[str]) -> None:
    (root / "splits").mkdir(parents=True, exist_ok=True)
    (root / "splits" / "test.txt").write_text("".join(f"{i}\n" for i in ids))


def reference(eval_root: Path, examples: Path) -> dict:
    """The bundled model on every object of ``eval_root``, reduced as the examples are."""
    from gs_core.evaluation.harness import EvalConfig, evaluate
    from gs_core.evaluation.predictors import MethodPredictor
    from gs_method_agg import load_bundled

    model = load_bundled().eval()
    ids = sorted(p.name for p in eval_root.iterdir() if (p / "transforms.json").is_file())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for oid in ids:
            reduce_object(eval_root / oid, root / oid)
        write_split(root, ids)
        cfg = EvalConfig(protocol="all", frame="azimuth", resolution=DEMO_RESOLUTION,
                         metrics=["psnr", "ssim"], sheets=False, backend="torch")  # fmt: skip
        rep = evaluate(MethodPredictor(model, "bundled"), root, "test", cfg)
    per = {o["object_id"]: {m: o["scores"][m]["all"] for m in ("psnr", "ssim")}
           for o in rep["objects"]}  # fmt: skip
    return {
        "dataset": "procedural-eval (gs3d data procedural --preset eval), 6 views per object "
        "as the examples keep them",
        "protocol": "all",
        "resolution": DEMO_RESOLUTION,
        "num_objects": len(per),
        "mean": {m: rep["mean"][m]["all"] for m in ("psnr", "ssim")},
        "objects": per,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("eval_root", type=Path)
    ap.add_argument("--objects", nargs="+", required=True)
    ap.add_argument("--examples", type=Path,
                    default=Path(__file__).resolve().parents[1] / "src" / "gs_method_agg" / "examples")  # fmt: skip
    ap.add_argument("--reference", action="store_true", help="also write reference.json")
    args = ap.parse_args()
    ex = args.examples
    for old in ex.iterdir():
        if (old / "transforms.json").is_file():
            shutil.rmtree(old)
    for oid in args.objects:
        reduce_object(args.eval_root / oid, ex / oid)
    write_split(ex, args.objects)
    if args.reference:
        ref = reference(args.eval_root, ex)
        (ex / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
        print(json.dumps(ref["mean"]))
        for oid in args.objects:
            print(oid, ref["objects"][oid])


if __name__ == "__main__":
    main()

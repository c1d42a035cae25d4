"""How hard each term of DD3G's joint objective pulls: the gradient norm over every student
parameter of ``es_mse``, ``iv`` and ``opacity``, separately, for each ``iv_reduction``.

Eq. 6 adds ``beta_i L_IV`` (beta_i <= eta = 0.4) to ``L_ES``; the paper does not say how
``L_IV`` is normalised, and a verifier whose gradient dwarfs explicit supervision's turns the
joint objective into IV alone. This measures the ratio for a preset with a teacher pack:

    python3 plugins/gs-method-dd3g/scripts/term_gradients.py --teacher .teacher/imagedream.safetensors

It makes ``--objects`` student images (procedural seed 1919, as ``train_small.py``) and their
quadruples by ``--ddim-steps`` DDIM steps, builds the student at initialisation (seed 0), and
prints one row per term: its value and gradient norm (the range over ``--draws`` draws of the
verifier's views, backgrounds, ``t`` and noise). The terms are unweighted (multiply by
lambda_1 = 0.5 and beta_i for their share in Eq. 6). A few minutes on a 2-core CPU for the
`small` preset.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, help="ImageDream pack or directory")
    p.add_argument("--preset", default="small")
    p.add_argument("--objects", type=int, default=8, help="student images (one batch)")
    p.add_argument("--ddim-steps", type=int, default=5)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--reductions", default="batch_mean,mean")
    p.add_argument(
        "--work", default=None, help="keep the procedural objects here (else a temp dir)"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", default=None, help="also write the rows here")
    return p


def term_gradient_norms(module, params, index: torch.Tensor, step: int, draws: int) -> dict:
    """``{term: [(value, grad_norm), ...]}`` over ``draws`` training steps' terms at ``step``."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for draw in range(draws):
        torch.manual_seed(draw)
        terms = module.training_step(index, step)
        for name, value in terms.items():
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None))
            rows.setdefault(name, []).append((float(value.detach()), float(norm)))
    return rows


def main(argv=None) -> dict:
    a = _parser().parse_args(argv)
    if a.work is not None:
        return _measure(a, Path(a.work))
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dd3g-terms-") as work:
        return _measure(a, Path(work))


def _measure(a, work: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import train_small

    from gs_method_dd3g import DD3G, DD3GConfig
    from gs_method_dd3g.procedural_evaluation import input_images, make_objects
    from gs_method_dd3g.quadruples import generate_quadruples
    from gs_method_dd3g.training import DD3GTrainingModule
    from gs_priors import ImageDreamGuidance

    teacher = ImageDreamGuidance.from_pretrained(a.teacher, device=a.device)
    size = int(teacher.image_size)
    root = make_objects(work / "student", a.objects, size, train_small.STUDENT_SEED, "train")
    images = input_images(root, size)
    t0 = time.time()
    quads = generate_quadruples(
        teacher,
        images,
        steps=a.ddim_steps,
        generator=torch.Generator().manual_seed(0),
        batch_size=a.objects,
    )
    print(f"{len(quads)} quadruples in {time.time() - t0:.0f} s", flush=True)
    index = torch.arange(len(quads))
    out: dict = {"teacher": str(a.teacher), "preset": a.preset, "objects": a.objects, "rows": {}}
    for reduction in [r for r in a.reductions.split(",") if r]:
        torch.manual_seed(0)
        cfg = DD3GConfig.preset(
            a.preset,
            objective="joint",
            latent_size=quads.noise.shape[-1],
            render_resolution=size,
            train={"device": a.device, "batch_size": a.objects},
        ).with_overrides([f"iv_reduction={reduction}"])
        model = DD3G(cfg)
        module = DD3GTrainingModule(model, quads, teacher)
        params = [p for p in model.parameters() if p.requires_grad]
        # At the last step beta_i = eta, so every term is computed (they are reported unweighted).
        rows = term_gradient_norms(module, params, index, cfg.train.max_steps, a.draws)
        out["rows"][reduction] = rows
        for name, vals in rows.items():
            v = [x for x, _ in vals]
            g = [y for _, y in vals]
            print(
                f"iv_reduction={reduction:10s} {name:8s} value {min(v):.4g}-{max(v):.4g}  "
                f"grad norm {min(g):.4g}-{max(g):.4g}",
                flush=True,
            )
    if a.json:
        from gs_core.io.atomic import atomic_write_text

        atomic_write_text(Path(a.json), json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()

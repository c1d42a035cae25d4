"""Table 2 of the paper (full > w/o Super Resolution > w/o Texture Field) from ablation runs, so
that runs trained in different GPU leases (other variants, other seeds) join one table.

A run is what ``scripts/train_bundled.py`` records per ``(variant, seed)``: ``{"variant",
"seed", "psnr", "ssim", "per_category_psnr", "complete", ...}`` (``coarse_end`` on full runs
that scored their coarse stage before the sr steps).
"""

from __future__ import annotations

import torch

# The Table 2 rows as config overrides of the full model, best first as in the paper.
VARIANTS = {
    "full": {},
    "nosr": {"super_resolution": False},
    "notex": {"super_resolution": False, "texture_field": False},
}
LABELS = {"full": "full", "nosr": "w/o Super Resolution", "notex": "w/o Texture Field"}


def summarise_ablations(runs: list[dict]) -> dict:
    """Table 2 from the ablation runs: per variant the mean and standard deviation (over seeds,
    complete runs only) of PSNR and SSIM, and whether the paper's order (full > w/o Super
    Resolution > w/o Texture Field) holds on the means and with every margin larger than the
    largest standard deviation of the two variants it separates. Runs of the full model that
    carry ``coarse_end`` (its score before the sr stage) also give ``sr_gain_paired``: the sr
    stage's gain per seed, its mean and spread."""
    table: dict[str, dict] = {}
    for variant in VARIANTS:
        done = [r for r in runs if r["variant"] == variant and r.get("complete", True)]
        if not done:
            continue
        row: dict = {"seeds": [r["seed"] for r in done]}
        for metric in ("psnr", "ssim"):
            vals = torch.tensor([float(r[metric]) for r in done], dtype=torch.float64)
            row[metric] = float(vals.mean())
            row[metric + "_std"] = float(vals.std()) if len(done) > 1 else None
        table[variant] = row
    summary: dict = {"table": table}
    # Best first, as in the paper's Table 2; the margins join the rows present (--variants).
    order = tuple(v for v in ("full", "nosr", "notex") if v in table)
    if len(order) > 1:
        for metric in ("psnr", "ssim"):
            pairs = list(zip(order[:-1], order[1:], strict=True))
            margins = [table[a][metric] - table[b][metric] for a, b in pairs]
            stds = [max(table[a][metric + "_std"] or 0.0, table[b][metric + "_std"] or 0.0)
                    for a, b in pairs]  # fmt: skip
            summary[metric] = {
                "margins": dict(zip([f"{a}-{b}" for a, b in pairs], margins, strict=True)),
                "order_holds": all(m > 0 for m in margins),
                "beyond_spread": all(m > sd for m, sd in zip(margins, stds, strict=True))
                and all(table[v][metric + "_std"] is not None for v in order),
            }
    paired = [r for r in runs if r["variant"] == "full" and r.get("complete", True)
              and "coarse_end" in r]  # fmt: skip
    if paired:
        # Super resolution's gain on the same model and seed (full minus its own coarse stage):
        # seed-to-seed spread cancels in the difference.
        summary["sr_gain_paired"] = {"seeds": [r["seed"] for r in paired]}
        for metric in ("psnr", "ssim"):
            d = torch.tensor([float(r[metric]) - float(r["coarse_end"][metric]) for r in paired],
                             dtype=torch.float64)  # fmt: skip
            summary["sr_gain_paired"][metric] = {
                "mean": float(d.mean()),
                "std": float(d.std()) if len(d) > 1 else None,
                "every_seed_gains": bool((d > 0).all()),
            }
    return summary


def paired_margins(runs: list[dict]) -> dict:
    """Each margin of the paper's order (``full-nosr``, ``nosr-notex``) seed by seed, on the
    seeds both variants share (complete runs): per seed, mean, standard deviation, whether every
    seed gains, and the mean margin per object category (PSNR)."""
    done = {(r["variant"], r["seed"]): r for r in runs if r.get("complete", True)}
    order = [v for v in VARIANTS if any(k[0] == v for k in done)]
    out = {}
    for better, worse in zip(order[:-1], order[1:], strict=True):
        seeds = sorted(s for v, s in done if v == better and (worse, s) in done)
        if not seeds:
            continue
        pair = {"seeds": seeds}
        for metric in ("psnr", "ssim"):
            d = torch.tensor(
                [float(done[better, s][metric]) - float(done[worse, s][metric]) for s in seeds],
                dtype=torch.float64,
            )
            pair[metric] = {
                "per_seed": d.tolist(),
                "mean": float(d.mean()),
                "std": float(d.std()) if len(d) > 1 else None,
                "every_seed_gains": bool((d > 0).all()),
            }
        categories = set.intersection(
            *(
                set(done[v, s].get("per_category_psnr") or {})
                for s in seeds
                for v in (better, worse)
            )
        )
        pair["per_category_psnr_mean"] = {
            c: sum(
                done[better, s]["per_category_psnr"][c] - done[worse, s]["per_category_psnr"][c]
                for s in seeds
            )
            / len(seeds)
            for c in sorted(categories)
        }
        out[f"{better}-{worse}"] = pair
    return out


__all__ = ["LABELS", "VARIANTS", "paired_margins", "summarise_ablations"]

"""gs-losses: Chamfer memory/time at 16k x 16k points, and LPIPS / SSIM step time.

The Chamfer rows check the issue's bound - memory stays bounded for 16k x 16k points: the
full distance matrix would take 1 GiB per batch element in float32; the blockwise search
holds at most ``--block`` entries at a time. Peak memory is measured on CUDA only.

LPIPS runs here on a random-weight backbone (timing only; these are not LPIPS values).

    python3 benchmarks/losses.py                  # CPU (smaller sizes unless --points given)
    python3 benchmarks/losses.py --device cuda    # one GPU

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from gs_core.metrics import ssim_map
from gs_losses import attribute_chamfer, chamfer_distance


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, repeats: int) -> tuple[float, float | None]:
    fn()  # warm-up
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    ms = (time.perf_counter() - t0) / repeats * 1e3
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return ms, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--points",
        type=int,
        default=None,
        help="points per set (default 16384 on CUDA, 4096 on CPU)",
    )
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=256)
    args = ap.parse_args()
    device = torch.device(args.device)
    n = args.points or (16384 if device.type == "cuda" else 4096)
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(args.batch, n, 3, generator=g) * 2 - 1).to(device).requires_grad_(True)
    b = (torch.rand(args.batch, n, 3, generator=g) * 2 - 1).to(device)
    rows = []
    full_mib = args.batch * n * n * 4 / 2**20
    for block in (1 << 22, 1 << 24, 1 << 26):

        def step(block=block):
            a.grad = None
            chamfer_distance(a, b, max_block_elements=block).backward()

        ms, peak = _timed(step, device, args.repeats)
        rows.append(
            (f"chamfer fwd+bwd {args.batch}x{n} vs {n}, block 2^{block.bit_length() - 1}", ms, peak)
        )

    attrs_p = {
        "xyz": a,
        "opacity": torch.rand(args.batch, n, 1, device=device),
        "rgb": torch.rand(args.batch, n, 3, device=device),
    }
    attrs_q = {
        "xyz": b,
        "opacity": torch.rand(args.batch, n, 1, device=device),
        "rgb": torch.rand(args.batch, n, 3, device=device),
    }

    def attr_step():
        a.grad = None
        sum(attribute_chamfer(attrs_p, attrs_q).values()).backward()

    ms, peak = _timed(attr_step, device, args.repeats)
    rows.append((f"attribute_chamfer fwd+bwd {args.batch}x{n} (xyz, opacity, rgb)", ms, peak))

    s = args.image_size
    x = torch.rand(8, 3, s, s, device=device, requires_grad=True)
    y = torch.rand(8, 3, s, s, device=device)

    def ssim_step():
        x.grad = None
        (1 - ssim_map(x, y, padding="same").mean()).backward()

    ms, peak = _timed(ssim_step, device, args.repeats)
    rows.append((f"ssim loss fwd+bwd 8x3x{s}x{s}", ms, peak))

    import warnings

    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = (
            lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False)
            .to(device)
            .eval()
        )
    model.requires_grad_(False)

    def lpips_step():
        x.grad = None
        model(x, y, normalize=True).mean().backward()

    ms, peak = _timed(lpips_step, device, args.repeats)
    rows.append((f"lpips(vgg) fwd+bwd 8x3x{s}x{s} (random trunk, timing only)", ms, peak))

    print(
        f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}; "
        f"a full {n}x{n} distance matrix would take {full_mib:.0f} MiB\n"
    )
    print("| benchmark | ms / step | peak CUDA memory (MiB) |")
    print("|---|---:|---:|")
    for name, ms, peak in rows:
        print(f"| {name} | {ms:.1f} | {'n/a' if peak is None else f'{peak:.0f}'} |")


if __name__ == "__main__":
    main()

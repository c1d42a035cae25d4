"""Per-step overhead of the gs_core training engine versus a bare PyTorch loop.

Both loops train the same MLP on the same in-memory data with Adam; the engine adds its
per-step work (named loss terms, cross-process averaging, the NaN check that reads the terms
back to the host, gradient clearing of every optimiser, LR schedule, progress and JSONL
logging). Checkpoints are left out of the step timing and measured separately.

    python3 benchmarks/engine.py                 # CPU
    python3 benchmarks/engine.py --device cuda   # one GPU

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from gs_core.training import Trainer, TrainerConfig, TrainingModule
from gs_core.training.checkpoint import save_checkpoint
from gs_core.training.distributed import DistInfo
from gs_core.training.run_dir import RunDir


class Pairs(Dataset):
    def __init__(self, n: int, dim: int):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, dim, generator=g)
        self.y = torch.randn(n, dim, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def make_mlp(dim: int, width: int, depth: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(dim, width), nn.GELU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.GELU()]
    layers.append(nn.Linear(width, dim))
    return nn.Sequential(*layers)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(model, data, device, batch, steps, warmup, precision) -> float:
    """Seconds per step of the loop people write by hand."""
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    done, t0 = 0, 0.0
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            if done == warmup + steps:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
            done += 1
    _sync(device)
    return (time.perf_counter() - t0) / steps


class BenchModule(TrainingModule):
    def __init__(self, model, data, cfg: TrainerConfig, device, warmup: int):
        super().__init__(None)
        self.net = model
        self.data = data
        self.cfg = cfg
        self.device_ = device
        self.warmup = warmup
        self.marks: dict[int, float] = {}

    def trainer_config(self) -> TrainerConfig:
        return self.cfg

    def train_dataset(self):
        return self.data

    def configure_optimizers(self):
        return {"net": torch.optim.Adam(self.net.parameters(), lr=1e-4)}

    def loss_weights(self, step):
        return {"mse": 1.0}

    def training_step(self, batch, step):
        x, y = batch
        return {"mse": ((self.net(x) - y) ** 2).mean()}

    def on_step_end(self, step):
        if step in (self.warmup, self.cfg.max_steps):
            _sync(self.device_)
            self.marks[step] = time.perf_counter()


def engine_loop(model, data, device, batch, steps, warmup, precision, run_dir: Path) -> float:
    cfg = TrainerConfig(
        max_steps=warmup + steps,
        batch_size=batch,
        device=str(device),
        precision=precision,
        log_every=50,
        checkpoint_every=10**9,
        progress="off",
        tensorboard="off",
    )
    module = BenchModule(model, data, cfg, device, warmup)
    Trainer(module, run_dir).fit()
    return (module.marks[warmup + steps] - module.marks[warmup]) / steps


def checkpoint_seconds(model, device, run_dir: Path) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # materialise Adam state, as in a real checkpoint
    info = DistInfo(0, 1, 0, device)
    t0 = time.perf_counter()
    save_checkpoint(
        RunDir(run_dir),
        1,
        info,
        {"net": model},
        lambda: {"step": 1, "optimizers": {"net": opt.state_dict()}},
    )
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--sizes", default="64x256x3,256x1024x4", help="comma list of batch x width x depth"
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        device = torch.device("cuda", device.index or 0)
        torch.cuda.set_device(device)
    dim = 64
    rows = []
    for size in args.sizes.split(","):
        batch, width, depth = (int(v) for v in size.split("x"))
        data = Pairs(batch * 64, dim)
        bare, eng = [], []
        for r in range(args.repeats):
            torch.manual_seed(r)
            bare.append(
                bare_loop(
                    make_mlp(dim, width, depth).to(device),
                    data,
                    device,
                    batch,
                    args.steps,
                    args.warmup,
                    args.precision,
                )
            )
            torch.manual_seed(r)
            with tempfile.TemporaryDirectory() as tmp:
                eng.append(
                    engine_loop(
                        make_mlp(dim, width, depth),
                        data,
                        device,
                        batch,
                        args.steps,
                        args.warmup,
                        args.precision,
                        Path(tmp) / "run",
                    )
                )
        with tempfile.TemporaryDirectory() as tmp:
            ck = checkpoint_seconds(
                make_mlp(dim, width, depth).to(device), device, Path(tmp) / "run"
            )
        params = sum(p.numel() for p in make_mlp(dim, width, depth).parameters())
        b, e = statistics.median(bare), statistics.median(eng)
        rows.append((size, params, b, e, ck))
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"\nEngine overhead per step, {name}, {args.precision}, median of {args.repeats} x {args.steps} steps\n"
    )
    print(
        "| batch x width x depth | params | bare loop ms/step | engine ms/step | overhead ms/step | overhead % | checkpoint write s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size, params, b, e, ck in rows:
        print(
            f"| {size} | {params:,} | {b * 1e3:.3f} | {e * 1e3:.3f} | {(e - b) * 1e3:+.3f} | {100 * (e - b) / b:+.1f}% | {ck:.3f} |"
        )


if __name__ == "__main__":
    main()

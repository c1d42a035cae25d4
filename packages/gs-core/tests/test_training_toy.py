"""A toy method for the training-engine tests, runnable as a script (subprocess / torchrun
tests), plus in-process checks of the engine against hand-written references."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pydantic
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from gs_core.config import Config
from gs_core.errors import GS3DError
from gs_core.method import Method
from gs_core.pretrained import PretrainedMixin, load_state_dict
from gs_core.training import (
    EMA,
    ScheduleConfig,
    Trainer,
    TrainerConfig,
    TrainingModule,
    build_scheduler,
    read_metrics,
    seed_everything,
)
from gs_core.training.data import epoch_batches
from gs_core.training.state_codec import decode_state, encode_state, load_state, save_state

TOY = Path(__file__).resolve()


# ---------------------------------------------------------------------------- the toy method
class ToyConfig(Config):
    width: int = 16
    dropout: float = 0.0
    noise: float = 0.0  # input noise drawn from the global RNG inside training_step
    lr: float = 1e-2
    schedule: ScheduleConfig = pydantic.Field(
        default_factory=lambda: ScheduleConfig(kind="cosine", warmup_steps=2, final_ratio=0.1)
    )
    lambda_mse: float = 1.0
    lambda_reg: float = 1e-3
    lambda_probe: float = 0.0  # logged only
    nan_at_step: int | None = None
    stall_at_step: int | None = None  # block in training_step until RUN_DIR/release exists
    fail_at_step: int | None = None  # raise in training_step on process rank fail_rank
    fail_rank: int = 0
    alternate: bool = False  # two optimisers taking turns
    train: TrainerConfig = pydantic.Field(default_factory=TrainerConfig)

    presets = {
        "tiny": {
            "train": {
                "max_steps": 4,
                "batch_size": 4,
                "log_every": 1,
                "checkpoint_every": 2,
                "keep_checkpoints": 2,
                "validate_every": 2,
                "progress": "off",
                "tensorboard": "off",
            }
        },
    }


class ToyNet(PretrainedMixin, nn.Module):
    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.body = nn.Sequential(nn.Linear(4, config.width), nn.Tanh(), nn.Dropout(config.dropout))
        self.head = nn.Linear(config.width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ToyData(Dataset):
    """``y = tanh(x A) + 0.1 sin(3 x)``: fixed data from a private generator."""

    def __init__(self, n: int = 32):
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, 4, generator=g)
        a = torch.randn(4, 2, generator=g)
        self.y = torch.tanh(self.x @ a) + 0.1 * torch.sin(3 * self.x[:, :2])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


class ToyTraining(TrainingModule):
    def __init__(self, method: ToyMethod, run_dir: Path | None = None):
        super().__init__(method.config)
        self.net = method.net
        self.teacher = nn.Linear(4, 2)  # frozen: must not be trained, synced nor checkpointed
        self.teacher.requires_grad_(False)
        self.run_dir = run_dir
        self.seen_steps: list[int] = []

    def trainer_config(self) -> TrainerConfig:
        return self.config.train

    def train_dataset(self):
        return ToyData()

    def configure_optimizers(self):
        cfg = self.config
        if cfg.alternate:
            body = torch.optim.SGD(self.net.body.parameters(), lr=cfg.lr)
            head = torch.optim.SGD(self.net.head.parameters(), lr=cfg.lr)
            return {"body": body, "head": head}
        opt = torch.optim.Adam(
            [
                {"params": self.net.body.parameters(), "name": "body"},
                {"params": self.net.head.parameters(), "lr": cfg.lr * 0.5, "name": "head"},
            ],
            lr=cfg.lr,
        )
        return {"net": (opt, build_scheduler(opt, cfg.schedule, cfg.train.max_steps))}

    def optimizers_to_step(self, step):
        return (["body"] if step % 2 == 0 else ["head"]) if self.config.alternate else None

    def training_step(self, batch, step):
        cfg = self.config
        if cfg.stall_at_step is not None and step == cfg.stall_at_step:
            print(f"STALL {step}", flush=True)
            release = self.run_dir / "release"
            deadline = time.monotonic() + 120
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        if cfg.fail_at_step is not None and step == cfg.fail_at_step:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            if rank == cfg.fail_rank:
                raise RuntimeError(f"toy: failing on rank {rank} at step {step}")
        x = batch["x"]
        if cfg.noise:
            x = x + cfg.noise * torch.randn_like(x)
        pred = self.net(x)
        mse = ((pred - batch["y"]) ** 2).mean()
        if cfg.nan_at_step is not None and step == cfg.nan_at_step:
            mse = mse * float("nan")
        reg = sum((p**2).sum() for p in self.net.parameters())
        probe = (self.teacher(x) - batch["y"]).abs().mean()
        self.seen_steps.append(step)
        return {"mse": mse, "reg": reg, "probe": probe}

    def validation_step(self, step):
        xs = torch.linspace(-1, 1, 8)
        img = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1)  # [8, 8, 2]
        out = torch.sigmoid(self.net(torch.cat([img, img], -1)))  # [8, 8, 2]
        rgb = torch.cat([out, out[..., :1]], -1)
        return {"field": [rgb, 1 - rgb], "mse": float(step)}


class ToyMethod(Method):
    config_class = ToyConfig
    name = "toy"

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.net = ToyNet(config)

    def training_module(self, stage=None, data_dir=None, run_dir=None, **kwargs):
        if stage not in (None, "main"):
            raise GS3DError(f"toy: unknown stage '{stage}'")
        return ToyTraining(self, run_dir=run_dir)


def load_toy_module():
    """This file as a module (for the other test files)."""
    name = "gs3d_training_toy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOY)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def make_config(toy: dict | None = None, **train) -> ToyConfig:
    base = dict(
        progress="off",
        tensorboard="off",
        log_every=1,
        batch_size=8,
        max_steps=6,
        checkpoint_every=100,
    )
    base.update(train)
    return ToyConfig(train=TrainerConfig(**base), **(toy or {}))


def run_toy(run_dir: Path, cfg: ToyConfig, resume: bool = False, seed: int = 0):
    seed_everything(seed)
    method = ToyMethod(cfg)
    module = method.training_module(run_dir=Path(run_dir))
    trainer = Trainer(module, run_dir, resume=resume)
    result = trainer.fit()
    return method, module, trainer, result


def main(argv: list[str] | None = None) -> None:
    """Script entry for the subprocess tests: ``python test_training_toy.py RUN_DIR key=value...``."""
    p = argparse.ArgumentParser()
    p.add_argument("run_dir", type=Path)
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*")
    args = p.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    cfg = ToyConfig().with_overrides(
        ["train.progress=off", "train.tensorboard=off", *args.overrides]
    )
    _, _, _, result = run_toy(args.run_dir, cfg, resume=args.resume)
    # one write per line: ranks share the pipe, and print() of several arguments interleaves
    done = json.dumps({"step": result.step, "interrupted": result.interrupted})
    sys.stdout.write(f"DONE {done}\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- tests
def _weights(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.net.state_dict().items()}


def _reference_loop(
    cfg: ToyConfig, steps: int, world_batch: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """The same training written out by hand: fixed data order, Adam, cosine LR, clipping."""
    seed_everything(seed)
    net = ToyNet(cfg)
    data = ToyData()
    opt = torch.optim.Adam(
        [{"params": net.body.parameters()}, {"params": net.head.parameters(), "lr": cfg.lr * 0.5}],
        lr=cfg.lr,
    )
    warm, total, final = cfg.schedule.warmup_steps, cfg.train.max_steps, cfg.schedule.final_ratio

    def mult(s):
        if s < warm:
            return s / warm
        t = min(1.0, (s - warm) / (total - warm))
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t))

    base = [g["lr"] for g in opt.param_groups]
    n_batches = len(data) // world_batch
    for s in range(steps):
        epoch, j = divmod(s, n_batches)
        order = torch.randperm(
            len(data), generator=torch.Generator().manual_seed(cfg.train.seed + epoch)
        ).tolist()
        idx = order[j * world_batch : (j + 1) * world_batch]
        for g, b in zip(opt.param_groups, base, strict=True):
            g["lr"] = b * mult(s)
        opt.zero_grad()
        pred = net(data.x[idx])
        loss = cfg.lambda_mse * ((pred - data.y[idx]) ** 2).mean() + cfg.lambda_reg * sum(
            (p**2).sum() for p in net.parameters()
        )
        loss.backward()
        if cfg.train.clip_grad_value:
            for p in net.parameters():
                p.grad.clamp_(-cfg.train.clip_grad_value, cfg.train.clip_grad_value)
        if cfg.train.clip_grad_norm:
            norm = torch.sqrt(sum((p.grad**2).sum() for p in net.parameters()))
            scale = min(1.0, cfg.train.clip_grad_norm / (float(norm) + 1e-6))
            for p in net.parameters():
                p.grad.mul_(scale)
        opt.step()
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("clip", [{}, {"clip_grad_norm": 0.05}, {"clip_grad_value": 0.01}])
def test_training_matches_hand_written_loop(tmp_path, clip):
    cfg = make_config(max_steps=7, **clip)  # 32 samples / 8 = 4 steps per epoch: crosses an epoch
    _, module, _, result = run_toy(tmp_path / "run", cfg)
    ref = _reference_loop(cfg, 7, 8)
    assert result.step == 7
    got = _weights(module)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6)


def test_training_grad_accumulation_equals_large_batch(tmp_path):
    _, big, _, _ = run_toy(tmp_path / "a", make_config(batch_size=8, grad_accum=1))
    _, acc, _, _ = run_toy(tmp_path / "b", make_config(batch_size=4, grad_accum=2))
    _, one, _, _ = run_toy(tmp_path / "c", make_config(batch_size=2, grad_accum=4))
    for k, v in _weights(big).items():
        torch.testing.assert_close(_weights(acc)[k], v, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(_weights(one)[k], v, rtol=1e-5, atol=1e-6)


def test_training_ema_follows_the_formula(tmp_path):
    cfg = make_config(max_steps=5, ema_decay=0.7, ema_start=2)
    seed_everything(0)
    snapshots = []

    class Recording(ToyTraining):
        def on_step_end(self, step):
            snapshots.append((step, _weights(self)))

    method = ToyMethod(cfg)
    trainer = Trainer(Recording(method), tmp_path / "run")
    trainer.fit()
    # shadow = weights after step 2, then s <- 0.7 s + 0.3 w after steps 3, 4, 5
    expected = dict(snapshots[1][1])
    for _, w in snapshots[2:]:
        expected = {k: 0.7 * expected[k] + 0.3 * w[k] for k in expected}
    live = _weights(method)
    with trainer.averaged_weights():
        averaged = _weights(method)
    for k in expected:
        torch.testing.assert_close(averaged[k], expected[k], rtol=1e-6, atol=1e-7)
    assert all(torch.equal(live[k], v) for k, v in _weights(method).items())  # restored afterwards
    assert not all(torch.equal(live[k], averaged[k]) for k in live)


def test_training_ema_warmup_decay():
    p = nn.Parameter(torch.zeros(3))
    ema = EMA({"p": p}, 0.999, warmup=True)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        with torch.no_grad():
            p.add_(1.0)
        ema.update()
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    # s1 = 0.9*0 + 0.1*1; s2 = (2/11) s1 + (9/11)*2; s3 = (3/12) s2 + (9/12)*3
    s = 0.0
    for d, w in zip(decays, [1, 2, 3], strict=True):
        s = d * s + (1 - d) * w
    torch.testing.assert_close(ema.shadow[0], torch.full((3,), s))


def test_training_alternating_optimizers_update_only_their_parameters(tmp_path):
    cfg = make_config({"alternate": True}, max_steps=2)
    seed_everything(0)
    method = ToyMethod(cfg)
    before = _weights(method)
    history = []

    class Recording(ToyTraining):
        def on_step_end(self, step):
            history.append(_weights(self))

    Trainer(Recording(method), tmp_path / "run").fit()
    after0, after1 = history
    # step 0 trains the body only, step 1 the head only
    assert not torch.equal(after0["body.0.weight"], before["body.0.weight"])
    assert torch.equal(after0["head.weight"], before["head.weight"])
    assert torch.equal(after1["body.0.weight"], after0["body.0.weight"])
    assert not torch.equal(after1["head.weight"], after0["head.weight"])


def test_training_run_directory_logs_samples_and_checkpoints(tmp_path):
    run = tmp_path / "run"
    cfg = make_config(
        max_steps=5, checkpoint_every=2, keep_checkpoints=2, validate_every=2, log_every=2
    )
    _, module, _, result = run_toy(run, cfg)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000004",
        "step-00000005",
    ]
    assert result.checkpoint == run / "checkpoints" / "step-00000005"
    ck = run / "checkpoints" / "step-00000005"
    # weights via save_pretrained, loadable as the model class
    net = ToyNet.from_pretrained(ck / "models" / "net")
    for k, v in net.state_dict().items():
        assert torch.equal(v, module.net.state_dict()[k])
    assert sorted(p.name for p in (ck / "models").iterdir()) == ["net"]  # not the frozen teacher
    state = load_state(ck, "trainer")
    assert state["step"] == 5 and state["world_size"] == 1
    assert set(state["optimizers"]) == {"net"} and set(state["schedulers"]) == {"net"}
    records = read_metrics(run / "logs" / "metrics.jsonl")
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == [2, 4, 5]
    assert {"loss/mse", "loss/reg", "loss/probe", "lr/net", "lr/net/head", "it_s"} <= set(train[0])
    val = [r for r in records if "val/mse" in r]
    assert [r["step"] for r in val] == [2, 4, 5] and val[0]["val/mse"] == 2.0
    sheets = sorted(p.name for p in (run / "samples").iterdir())
    assert sheets == [f"step-{s:08d}-field.png" for s in (2, 4, 5)]
    from gs_core.imaging import load_image

    assert load_image(run / "samples" / sheets[0]).shape[:2] == (12, 22)  # 2 tiles of 8x8, pad 2
    snap = json.loads((run / "config.json").read_text())
    assert snap["trainer"]["max_steps"] == 5
    # the loss logged is the weighted sum of the logged terms
    r = train[-1]
    assert r["loss"] == pytest.approx(r["loss/mse"] + 1e-3 * r["loss/reg"], rel=1e-6)


def test_training_refuses_to_overwrite_a_run(tmp_path):
    run_toy(tmp_path / "run", make_config(max_steps=2))
    with pytest.raises(GS3DError, match="already holds a run"):
        run_toy(tmp_path / "run", make_config(max_steps=2))


def test_training_missing_lambda_is_named(tmp_path):
    class Extra(ToyTraining):
        def training_step(self, batch, step):
            return {**super().training_step(batch, step), "depth": torch.tensor(0.0)}

    seed_everything(0)
    method = ToyMethod(make_config())
    with pytest.raises(GS3DError, match="'depth' without a weight: add 'lambda_depth'"):
        Trainer(Extra(method), tmp_path / "run").fit()


def test_training_non_scalar_term_is_named(tmp_path):
    class Bad(ToyTraining):
        def training_step(self, batch, step):
            return {"mse": (self.net(batch["x"]) - batch["y"]) ** 2}

    with pytest.raises(
        GS3DError, match=r"loss term 'mse': expected a float scalar tensor, got shape \(8, 2\)"
    ):
        Trainer(Bad(ToyMethod(make_config())), tmp_path / "run").fit()


def test_training_optimised_parameter_outside_models_is_refused(tmp_path):
    class Loose(ToyTraining):
        def __init__(self, method):
            super().__init__(method)
            self.scale = nn.Parameter(torch.ones(()))

        def configure_optimizers(self):
            return {"all": torch.optim.SGD([*self.net.parameters(), self.scale], lr=0.1)}

    with pytest.raises(GS3DError, match=r"trains a parameter of shape \(\) that is in none of"):
        Trainer(Loose(ToyMethod(make_config())), tmp_path / "run").fit()


def test_training_state_codec_round_trip(tmp_path):
    opt = torch.optim.AdamW([nn.Parameter(torch.randn(3, 2))], lr=1e-3, betas=(0.8, 0.95))
    opt.param_groups[0]["params"][0].grad = torch.randn(3, 2)
    opt.step()
    tree = {
        "opt": opt.state_dict(),
        "nested": {
            1: (1.5, None, "a"),
            "inf": float("inf"),
            "t": torch.arange(4, dtype=torch.uint8),
        },
        "list": [torch.ones(2, dtype=torch.bfloat16), True],
    }
    save_state(tmp_path, "s", tree)
    back = load_state(tmp_path, "s")
    assert back["opt"]["param_groups"][0]["betas"] == (0.8, 0.95)
    assert back["nested"][1] == (1.5, None, "a") and back["nested"]["inf"] == float("inf")
    assert torch.equal(back["nested"]["t"], tree["nested"]["t"])
    assert back["list"][0].dtype == torch.bfloat16 and back["list"][1] is True
    for k, v in tree["opt"]["state"][0].items():
        assert torch.equal(back["opt"]["state"][0][k], v)
    with pytest.raises(GS3DError, match="'.bad' holds a set"):
        encode_state({"bad": {1, 2}})
    skel, tensors = encode_state({"a": torch.zeros(2)})
    assert decode_state(json.loads(json.dumps(skel)), tensors)["a"].shape == (2,)


def test_training_data_split_is_the_single_process_batch():
    one = epoch_batches(40, 8, 0, 1, seed=3, epoch=2, shuffle=True)
    r0 = epoch_batches(40, 4, 0, 2, seed=3, epoch=2, shuffle=True)
    r1 = epoch_batches(40, 4, 1, 2, seed=3, epoch=2, shuffle=True)
    assert len(one) == len(r0) == len(r1) == 5
    for b, a0, a1 in zip(one, r0, r1, strict=True):
        assert sorted(b) == sorted(a0 + a1)
    assert sorted(i for b in one for i in b) == list(range(40))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("constant", [0.0, 0.5, 1.0, 1.0, 1.0]),
        ("linear", [0.0, 0.5, 1.0, 0.55, 0.1]),
        ("cosine", [0.0, 0.5, 1.0, 0.55, 0.1]),
        ("exponential", [0.0, 0.5, 0.1 ** (2 / 4), 0.1 ** (3 / 4), 0.1]),
    ],
)
def test_training_schedules(kind, expected):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = build_scheduler(
        opt, ScheduleConfig(kind=kind, warmup_steps=2, final_ratio=0.1), max_steps=4
    )
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"] / 2.0)
        opt.step()
        sched.step()
    assert lrs == pytest.approx(expected)
    assert json.dumps(encode_state(sched.state_dict())[0])  # checkpointable without pickle


def test_training_exponential_matches_dreamgaussian_position_lr():
    # DreamGaussian: position lr 1e-3 -> 2e-5 over 500 steps, log-linear.
    mult = ScheduleConfig(kind="exponential", final_ratio=2e-5 / 1e-3, total_steps=500).multiplier(
        500
    )
    for step in (0, 100, 250, 500, 800):
        t = min(step / 500, 1.0)
        ref = np.exp(np.log(1e-3) * (1 - t) + np.log(2e-5) * t)
        assert 1e-3 * mult(step) == pytest.approx(ref, rel=1e-9)


def test_training_loads_checkpoint_weights_with_load_state_dict(tmp_path):
    _, module, _, _ = run_toy(tmp_path / "run", make_config(max_steps=2, checkpoint_every=2))
    state = load_state_dict(tmp_path / "run" / "checkpoints" / "step-00000002" / "models" / "net")
    assert all(torch.equal(state[k], v) for k, v in module.net.state_dict().items())


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_training_mixed_precision_autocasts_and_resumes(tmp_path, precision):
    seen = []

    class Recording(ToyTraining):
        def training_step(self, batch, step):
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return super().training_step(batch, step)

    run = tmp_path / "run"
    seed_everything(0)
    method = ToyMethod(make_config(max_steps=3, checkpoint_every=3, precision=precision))
    Trainer(Recording(method), run).fit()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert seen == [(True, dtype)] * 3
    state = load_state(run / "checkpoints" / "step-00000003", "trainer")
    if precision == "fp16":  # the loss scaler is checkpointed
        assert state["scaler"]["scale"] > 0
    else:
        assert state["scaler"] is None
    ref = _reference_loop(make_config(max_steps=3), 3, 8)
    got = _weights(method)
    assert all(torch.isfinite(v).all() for v in got.values())
    # low-precision matmuls: close to the fp32 run, not equal
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0.05, atol=0.02)
    _, _, _, result = run_toy(run, make_config(max_steps=4, precision=precision), resume=True)
    assert result.step == 4


def test_training_progress_lines_show_step_speed_eta_and_terms(tmp_path, capsys):
    run_toy(tmp_path / "run", make_config(max_steps=4, log_every=2, progress="lines"))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("step ")]
    assert len(lines) == 2
    assert lines[0].startswith("step 2/4 | ") and " it/s | ETA " in lines[0]
    assert (
        "loss " in lines[0] and "mse " in lines[0] and "reg " in lines[0] and "probe " in lines[0]
    )


def test_training_progress_bar_renders_on_a_terminal(tmp_path):
    from rich.console import Console

    from gs_core.training.progress import ProgressDisplay

    with open(tmp_path / "tty.txt", "w") as fh:
        display = ProgressDisplay(
            "auto", total=10, start=3, console=Console(file=fh, force_terminal=True, width=160)
        )
        assert display.mode == "bar"  # auto: a terminal gets the bar
        display.update(5, 12.5, {"loss": 0.25, "mse": 0.125})
        display.close()
    text = (tmp_path / "tty.txt").read_text()
    assert "5/10" in text and "12.50 it/s" in text and "loss 0.25 mse 0.125" in text


def test_training_tensorboard_on_needs_the_package(tmp_path):
    cfg = make_config(max_steps=2, tensorboard="on")
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(
            GS3DError, match=r"tensorboard=on but the tensorboard package is not installed"
        ):
            run_toy(tmp_path / "run", cfg)
    else:
        run_toy(tmp_path / "run", cfg)
        assert any((tmp_path / "run" / "logs" / "tensorboard").glob("events.out.tfevents.*"))


def test_training_deterministic_mode_is_scoped_to_the_run(tmp_path):
    seen = []

    class Recording(ToyTraining):
        def training_step(self, batch, step):
            seen.append(torch.are_deterministic_algorithms_enabled())
            return super().training_step(batch, step)

    assert not torch.are_deterministic_algorithms_enabled()
    Trainer(
        Recording(ToyMethod(make_config(max_steps=2, deterministic=True))), tmp_path / "run"
    ).fit()
    assert seen == [True, True]
    assert not torch.are_deterministic_algorithms_enabled()


if __name__ == "__main__":
    main()


def test_dataloader_workers_are_capped_by_the_cores(monkeypatch):
    from gs_core.training import trainer

    monkeypatch.setattr("gs_core.devices.available_cores", lambda: 2)
    assert trainer._worker_count(0, 1) == 0  # in-process loading stays in-process
    assert trainer._worker_count(6, 1) == 2  # a GPU preset's 6 workers on a 2-core machine
    assert trainer._worker_count(6, 2) == 1  # two processes share the cores
    assert trainer._worker_count(6, 4) == 1  # never 0 when workers were asked for
    monkeypatch.setattr("gs_core.devices.available_cores", lambda: 16)
    assert trainer._worker_count(6, 2) == 6

"""Trainer callbacks and the wall-clock budget: order of the hooks, stop requests, a budget stop
that checkpoints like SIGTERM and resumes to the same weights as an uninterrupted run."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import GS3DError
from gs_core.training import Callback, Trainer, WallClockBudget, seed_everything


class Recorder(Callback):
    def __init__(self, events: list, stop_at: int | None = None, reason: str | bool = "enough"):
        self.events = events
        self.stop_at = stop_at
        self.reason = reason

    def on_fit_start(self, trainer):
        self.events.append(("start", trainer.step))

    def on_step_end(self, trainer, step, logs):
        assert step == trainer.step
        self.events.append(("step", step, sorted(k for k in logs if k.startswith("loss"))))
        return self.reason if step == self.stop_at else None

    def on_checkpoint(self, trainer, path):
        self.events.append(("checkpoint", path.name))

    def on_fit_end(self, trainer, result):
        self.events.append(("end", result.step, result.stopped_by))


class FakeClock:
    def __init__(self, step_s: float):
        self.now = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s  # each reading is one more tick: the run "takes" time
        return self.now


def _fit(toy, run, cfg, resume=False, **kw):
    seed_everything(0)
    method = toy.ToyMethod(cfg)
    trainer = Trainer(method.training_module(run_dir=run), run, resume=resume, **kw)
    return method, trainer.fit()


def _weights(method) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.net.state_dict().items()}


def test_callbacks_run_in_order_around_steps_and_checkpoints(toy, tmp_path):
    events: list = []
    other: list = []
    cfg = toy.make_config(max_steps=3, checkpoint_every=2)
    _, result = _fit(toy, tmp_path / "run", cfg, callbacks=[Recorder(events), Recorder(other)])
    terms = ["loss", "loss/mse", "loss/probe", "loss/reg"]
    assert events == [
        ("start", 0),
        ("step", 1, terms),
        ("step", 2, terms),
        ("checkpoint", "step-00000002"),
        ("step", 3, terms),
        ("checkpoint", "step-00000003"),
        ("end", 3, None),
    ]
    assert other == events  # every callback sees every event
    assert result.stopped_by is None and not result.interrupted


@pytest.mark.parametrize(("reason", "expected"), [("plateau", "plateau"), (True, "Recorder")])
def test_callback_stop_request_checkpoints_and_reports_why(toy, tmp_path, reason, expected):
    events: list = []
    run = tmp_path / "run"
    cfg = toy.make_config(max_steps=6, validate_every=100)
    _, result = _fit(toy, run, cfg, callbacks=[Recorder(events, stop_at=2, reason=reason)])
    assert result.step == 2 and result.interrupted and result.stopped_by == expected
    assert result.checkpoint == run / "checkpoints" / "step-00000002"
    assert [e[0] for e in events] == ["start", "step", "step", "checkpoint", "end"]


def test_a_stop_request_at_the_last_step_is_a_normal_end(toy, tmp_path):
    _, result = _fit(
        toy, tmp_path / "run", toy.make_config(max_steps=2), callbacks=[Recorder([], stop_at=2)]
    )
    assert result.step == 2 and result.stopped_by is None and not result.interrupted


def test_a_bad_stop_request_is_named(toy, tmp_path):
    with pytest.raises(GS3DError, match=r"Recorder.on_step_end\(\): expected None, a bool"):
        _fit(
            toy,
            tmp_path / "run",
            toy.make_config(max_steps=2),
            callbacks=[Recorder([], stop_at=1, reason="")],
        )
    with pytest.raises(
        GS3DError, match="expected gs_core.training.Callback objects, got builtin_function"
    ):
        Trainer(
            toy.ToyMethod(toy.make_config()).training_module(), tmp_path / "r2", callbacks=[len]
        )
    with pytest.raises(GS3DError, match="budget_s: expected a positive number of seconds"):
        WallClockBudget(0)


def test_budget_stop_is_resumable_to_the_uninterrupted_weights(toy, tmp_path):
    cfg = toy.make_config(max_steps=7, checkpoint_every=100)
    reference, _ = _fit(toy, tmp_path / "reference", cfg)

    run = tmp_path / "run"
    # Each clock reading advances 1 s: one at the start, one after each step, so 2 s have
    # passed after step 2.
    events: list = []
    budget = WallClockBudget(1.5, clock=FakeClock(1.0))
    _, cut = _fit(toy, run, cfg, callbacks=[budget, Recorder(events)])
    assert cut.stopped_by == "budget" and cut.interrupted and cut.step == 2
    assert cut.checkpoint == run / "checkpoints" / "step-00000002"
    assert events[-2:] == [("checkpoint", "step-00000002"), ("end", 2, "budget")]

    resumed, done = _fit(toy, run, cfg, resume=True)
    assert done.step == 7 and done.stopped_by is None
    want, got = _weights(reference), _weights(resumed)
    assert all(torch.equal(got[k], v) for k, v in want.items())


def test_trainer_budget_s_stops_a_run_on_the_real_clock(toy, tmp_path, capsys):
    cfg = toy.make_config(max_steps=1000, checkpoint_every=10_000)
    _, result = _fit(toy, tmp_path / "run", cfg, budget_s=1e-6)
    assert result.stopped_by == "budget" and result.step == 1
    assert (tmp_path / "run" / "checkpoints" / "step-00000001").is_dir()
    assert "stopped at step 1 (budget)" in capsys.readouterr().err


DDP_SCRIPT = """
import importlib.util, os, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("gs3d_training_toy", {toy!r})
toy = importlib.util.module_from_spec(spec)
sys.modules["gs3d_training_toy"] = toy
spec.loader.exec_module(toy)
from gs_core.training import Callback, Trainer, seed_everything

class StopOnRankOne(Callback):
    def on_step_end(self, trainer, step, logs):
        return "rank-one" if step == 2 and os.environ["RANK"] == "1" else None

seed_everything(0)
cfg = toy.make_config(max_steps=6, batch_size=4)
module = toy.ToyMethod(cfg).training_module(run_dir=Path({run!r}))
result = Trainer(module, {run!r}, callbacks=[StopOnRankOne()]).fit()
sys.stdout.write(f"DONE rank={{os.environ['RANK']}} step={{result.step}} by={{result.stopped_by}}\\n")
"""


def test_a_stop_request_on_one_process_stops_every_process(toy, tmp_path):
    import os
    import subprocess
    import sys

    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("needs torch.distributed gloo")
    script = tmp_path / "ddp_stop.py"
    script.write_text(DDP_SCRIPT.format(toy=toy.__file__, run=str(tmp_path / "run")))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DONE rank=1 step=2 by=rank-one" in proc.stdout
    assert "DONE rank=0 step=2 by=a callback on another process" in proc.stdout
    assert (tmp_path / "run" / "checkpoints" / "step-00000002").is_dir()


def test_a_signalled_result_stops_a_script_that_chains_runs(tmp_path):
    from gs_core.training import TrainingInterruptedError, TrainResult

    done = TrainResult(step=8, checkpoint=tmp_path / "step-8")
    assert done.raise_if_signalled() is done
    for reason in ("budget", "plateau"):  # a budget or a callback's stop is not a signal
        TrainResult(
            step=3, checkpoint=None, interrupted=True, stopped_by=reason
        ).raise_if_signalled()
    stopped = TrainResult(
        step=5, checkpoint=tmp_path / "step-5", interrupted=True, stopped_by="signal"
    )
    with pytest.raises(TrainingInterruptedError, match="signal at step 5") as info:
        stopped.raise_if_signalled()
    assert info.value.checkpoint == tmp_path / "step-5"

"""NaN/Inf in training: the engine stops at the step and in the tensor where they first appear
(a forward output, a loss term, a gradient, a parameter after the optimiser step), never writes
non-finite weights, sets aside a checkpoint whose weights produced them, and resumes from the
last good one with the new settings (a lower learning rate)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gs_core.gaussians import Gaussians
from gs_core.training import Callback, TrainingDivergedError, read_metrics
from gs_core.training.finite import first_nonfinite, nonfinite_flag
from gs_core.training.state_codec import load_state


def _checkpoints(run: Path) -> list[str]:
    if not (run / "checkpoints").is_dir():
        return []
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def _fit(toy, module_class, run: Path, **train):
    method = toy.ToyMethod(toy.make_config(**train))
    module = module_class(method, run_dir=run)
    return method, toy.Trainer(module, run).fit()


def _diverges(toy, module_class, run: Path, **train) -> tuple[TrainingDivergedError, object]:
    method = toy.ToyMethod(toy.make_config(**train))
    with pytest.raises(TrainingDivergedError) as err:
        toy.Trainer(module_class(method, run_dir=run), run).fit()
    return err.value, method


def _finite(method) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in method.net.parameters())


class _Overflow:
    """Plain SGD whose update of ``net.head.weight`` (finite gradient, finite rate) overflows
    to -inf at step ``at``; the other parameters train normally."""

    at = 2

    def on_after_backward(self, step):
        grad = self.net.head.weight.grad
        if step == self.at:
            grad.fill_(1e30)
        else:
            grad.zero_()

    def configure_optimizers(self):
        head = [self.net.head.weight]
        rest = [p for p in self.net.parameters() if p is not self.net.head.weight]
        return {"net": torch.optim.SGD([{"params": rest}, {"params": head, "lr": 1e10}], lr=1e-2)}


# ---------------------------------------------------------------------------- forward outputs
def test_nonfinite_forward_output_is_named_with_its_step(tmp_path, toy):
    class NanGaussians(toy.ToyTraining):
        def training_step(self, batch, step):
            terms = super().training_step(batch, step)
            if step == 3:
                means = torch.full((5, 3), float("nan"))
                Gaussians.from_colors(means, torch.rand(5, 3), 0.02, torch.rand(5))
            return terms

    err, _ = _diverges(toy, NanGaussians, tmp_path / "run", checkpoint_every=2, max_steps=6)
    assert err.step == 3 and err.what == "Gaussians.means, computed in training_step"
    assert str(err).startswith("step 3: non-finite values in Gaussians.means")
    assert "15 NaN/Inf entries" in str(err)
    assert err.last_checkpoint == tmp_path / "run" / "checkpoints" / "step-00000002"


def test_nan_weights_failing_deep_inside_a_step_are_named_not_the_symptom(tmp_path, toy):
    """An update that leaves NaN weights surfaces in the next forward, often as some unrelated
    error deep inside a method (an index out of range in voxelisation): the engine reports the
    parameter and the step of the update instead."""

    class Voxelises(_Overflow, toy.ToyTraining):
        def training_step(self, batch, step):
            if not bool(torch.isfinite(self.net.head.weight).all()):
                raise IndexError("index -9223372036854775808 is out of bounds for dimension 0")
            return super().training_step(batch, step)

    err, _ = _diverges(toy, Voxelises, tmp_path / "run", max_steps=6)
    assert err.step == 2
    assert err.what == "parameter 'net.head.weight' after the optimiser step"


# ---------------------------------------------------------------------------- loss terms
def test_nan_loss_names_term_and_step_and_sets_the_checkpoint_aside(tmp_path, toy):
    run = tmp_path / "run"
    cfg = toy.make_config({"nan_at_step": 4}, max_steps=10, checkpoint_every=2, keep_checkpoints=5)
    with pytest.raises(TrainingDivergedError) as err:
        toy.run_toy(run, cfg)
    e = err.value
    assert e.step == 4 and e.what == "loss term 'mse'"
    assert str(e).startswith("step 4: non-finite values in loss term 'mse' (nan); training stopped")
    # the weights of step-4 produced the NaN: resuming from them would fail again, so the last
    # good checkpoint is step-2 and step-4 is kept aside for inspection
    assert e.last_checkpoint == run / "checkpoints" / "step-00000002"
    assert e.set_aside == run / "checkpoints" / "step-00000004.diverged"
    assert str(e.last_checkpoint) in str(e) and "--resume" in str(e)
    assert _checkpoints(run) == ["step-00000002", "step-00000004.diverged"]
    assert max(r["step"] for r in read_metrics(run / "logs" / "metrics.jsonl")) == 4

    _, _, _, result = toy.run_toy(run, toy.make_config(max_steps=6, checkpoint_every=2), True)
    assert result.step == 6
    assert _checkpoints(run) == [
        "step-00000002",
        "step-00000004",
        "step-00000004.diverged",
        "step-00000006",
    ]


def test_nan_before_any_checkpoint_says_so(tmp_path, toy):
    with pytest.raises(TrainingDivergedError, match="no good checkpoint had been written yet"):
        toy.run_toy(tmp_path / "run", toy.make_config({"nan_at_step": 1}, checkpoint_every=5))
    assert _checkpoints(tmp_path / "run") == []


def test_nan_in_a_zero_weight_term_is_only_logged(tmp_path, toy):
    class NanProbe(toy.ToyTraining):
        def training_step(self, batch, step):
            terms = dict(super().training_step(batch, step))
            terms["probe"] = terms["probe"] * float("inf")
            return terms

    _, result = _fit(toy, NanProbe, tmp_path / "run", max_steps=2)
    assert result.step == 2
    records = read_metrics(tmp_path / "run" / "logs" / "metrics.jsonl")
    assert records[-1]["loss/probe"] == float("inf") and records[-1]["loss"] < 10


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("clip", [None, 1.0], ids=["no-clipping", "clip-by-norm"])
def test_nan_gradient_names_the_parameter_and_takes_no_step(tmp_path, toy, clip):
    class NanGrad(toy.ToyTraining):
        def on_after_backward(self, step):
            if step == 3:  # finite loss, NaN gradient
                self.net.head.bias.grad[0] = float("nan")

    run = tmp_path / "run"
    err, method = _diverges(toy, NanGrad, run, max_steps=6, clip_grad_norm=clip, checkpoint_every=2)
    assert err.step == 3 and err.what == "the gradient of parameter 'net.head.bias'"
    assert "(1 of 2 entries are NaN/Inf)" in str(err)
    assert _finite(method)  # the optimiser step was not taken
    assert _checkpoints(run) == ["step-00000002"]
    assert err.last_checkpoint == run / "checkpoints" / "step-00000002"


def test_gradient_norm_overflow_names_the_largest_gradient(tmp_path, toy):
    class HugeGrad(toy.ToyTraining):
        def on_after_backward(self, step):
            if step == 1:  # every entry finite, their 2-norm is not
                self.net.body[0].weight.grad.fill_(1e30)

    err, method = _diverges(toy, HugeGrad, tmp_path / "run", max_steps=4, clip_grad_norm=1.0)
    assert err.step == 1 and err.what == "the gradient norm"
    assert "norm overflows" in str(err) and "'net.body.0.weight'" in str(err)
    assert _finite(method)


# ---------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "at, train",
    [
        (2, {"checkpoint_every": 2}),  # found with the next step's loss read-back
        (2, {"checkpoint_every": 3}),  # found by the check before every checkpoint
        (5, {"checkpoint_every": 100}),  # the last step: found before the final checkpoint
        (2, {"validate_every": 3}),  # found before validation_step reads the weights
    ],
    ids=["next-step", "checkpoint", "last-step", "validation"],
)
def test_nonfinite_parameter_after_the_step_is_named_and_never_checkpointed(
    tmp_path, toy, at, train
):
    class Overflow(_Overflow, toy.ToyTraining):
        pass

    Overflow.at = at
    run = tmp_path / "run"
    err, _ = _diverges(toy, Overflow, run, max_steps=6, **train)
    assert err.step == at
    assert err.what == "parameter 'net.head.weight' after the optimiser step"
    assert "(32 of 32 entries are NaN/Inf)" in str(err)
    # the weights the step started from were fine: their checkpoint stays the one to resume
    assert err.set_aside is None
    for name in _checkpoints(run):
        weights = load_state(run / "checkpoints" / name, "trainer")
        assert weights["step"] <= at
    assert not list(run.glob(f"samples/step-{at + 1:08d}*"))


def test_nonfinite_parameters_are_found_before_hooks_read_them(tmp_path, toy):
    class Hooked(_Overflow, toy.ToyTraining):
        seen_nan = False

        def on_step_end(self, step):
            if not bool(torch.isfinite(self.net.head.weight).all()):
                type(self).seen_nan = True

    err, _ = _diverges(toy, Hooked, tmp_path / "run", max_steps=6)
    assert err.step == 2 and not Hooked.seen_nan


def test_nonfinite_ema_is_never_checkpointed(tmp_path, toy):
    """``final/`` receives the EMA weights when EMA is on: they are checked like the weights."""

    class SpoilEma(Callback):
        def on_step_end(self, trainer, step, logs):
            if step == 2:
                trainer.ema.shadow[0].fill_(float("nan"))

    method = toy.ToyMethod(toy.make_config(max_steps=4, checkpoint_every=2, ema_decay=0.9))
    module = method.training_module(run_dir=tmp_path / "run")
    trainer = toy.Trainer(module, tmp_path / "run", callbacks=[SpoilEma()])
    with pytest.raises(TrainingDivergedError, match="the EMA of parameter 'net.body.0.weight'"):
        trainer.fit()
    assert _checkpoints(tmp_path / "run") == []


# ---------------------------------------------------------------------------- resuming
def test_resume_applies_a_new_learning_rate_from_the_last_good_checkpoint(tmp_path, toy):
    run = tmp_path / "run"
    cfg = toy.make_config({"nan_at_step": 4}, max_steps=8, checkpoint_every=2, keep_checkpoints=1)
    with pytest.raises(TrainingDivergedError) as err:
        toy.run_toy(run, cfg)
    # keep_checkpoints=1 still leaves one checkpoint that a step has run from
    assert err.value.last_checkpoint == run / "checkpoints" / "step-00000002"

    new = toy.make_config({"lr": 1e-4}, max_steps=8, checkpoint_every=2, keep_checkpoints=1)
    _, module, trainer, result = toy.run_toy(run, new, resume=True)
    assert result.step == 8
    (opt,) = trainer._optimizers.values()
    (sched,) = trainer._schedulers.values()
    mult = new.schedule.multiplier(8)(8)
    # group 0 ("body") runs at lr, group 1 ("head") at lr / 2, both on the same schedule
    assert sched.base_lrs == pytest.approx([1e-4, 0.5e-4])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-4 * mult, 0.5e-4 * mult])
    lrs = {r["step"]: r["lr/net"] for r in read_metrics(run / "logs" / "metrics.jsonl")}
    assert lrs[2] > 1e-3 and lrs[3] <= 1e-4  # the old rate up to step 2, the new one after
    state = load_state(run / "checkpoints" / "step-00000008", "trainer")
    assert state["optimizer_hparams"]["net"][0]["lr"] == 1e-4


def test_resume_with_an_unchanged_configuration_keeps_the_optimiser_state(tmp_path, toy):
    run = tmp_path / "run"
    toy.run_toy(run, toy.make_config(max_steps=3, checkpoint_every=3))
    before = load_state(run / "checkpoints" / "step-00000003", "trainer")["optimizers"]["net"]
    _, _, trainer, _ = toy.run_toy(run, toy.make_config(max_steps=3, checkpoint_every=3), True)
    (opt,) = trainer._optimizers.values()
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in before["param_groups"]]
    assert trainer._resume_notes == []


# ---------------------------------------------------------------------------- the checks
def test_fused_check_flags_nan_and_inf_and_the_search_confirms_them():
    finite = [torch.ones(3), torch.full((100_000,), 60.0, dtype=torch.float16), torch.zeros(0)]
    assert float(nonfinite_flag(finite)) == 0  # fp16 with a norm beyond 65504 is still finite
    for bad in (float("nan"), float("inf"), -float("inf")):
        t = torch.ones(5, dtype=torch.bfloat16)
        t[3] = bad
        assert float(nonfinite_flag([*finite, t])) > 0
        assert first_nonfinite([("a", finite[0]), ("b", t)]) == ("b", "1 of 5 entries are NaN/Inf")
    # huge finite values may raise the fused flag (the norm overflows) but are not NaN/Inf
    huge = [("w", torch.full((4,), 1e30))]
    assert first_nonfinite(huge) is None
    assert float(nonfinite_flag([torch.full((4,), 1e30, dtype=torch.float64)])) == 0

"""``gs3d train`` wired through the plugin registry, with a toy method registered in-process."""

from __future__ import annotations

import json

import pytest
import torch

from gs_core import CORE_API_VERSION
from gs_core.cli.main import main
from gs_core.plugins.registry import reset_registry
from gs_core.plugins.specs import MethodSpec
from gs_core.pretrained import load_state_dict
from gs_core.training import read_metrics
from gs_core.training.state_codec import load_state


def _register_toy(toy, **spec_fields) -> None:
    reset_registry(discover=False).register_method(
        MethodSpec(
            name="toy",
            summary="a two-layer MLP for engine tests",
            config_class=toy.ToyConfig,
            core_api=CORE_API_VERSION,
            **spec_fields,
        )
    )


@pytest.fixture
def toy_registered(toy):
    _register_toy(toy, factory=toy.ToyMethod)
    yield toy
    reset_registry()


def _gs3d(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as e:
        if e.code not in (0, None):
            raise


def test_training_cli_trains_resumes_and_exports(tmp_path, toy_registered, capsys):
    toy = toy_registered
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    _gs3d(
        "train",
        "--method",
        "toy",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(run),
        "width=8",
    )
    err = capsys.readouterr().err
    assert "trained toy for 4 steps" in err
    snap = json.loads((run / "config.json").read_text())
    assert snap["method"] == "toy" and snap["preset"] == "tiny" and snap["data"] == str(data)
    assert snap["overrides"] == ["width=8"] and snap["method_config"]["width"] == 8
    assert snap["trainer"]["max_steps"] == 4 and snap["trainer"]["batch_size"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step-00000002",
        "step-00000004",
    ]
    assert (run / "samples" / "step-00000004-field.png").is_file()
    final = toy.ToyMethod.from_pretrained(run / "final")
    assert final.config.width == 8
    ckpt_net = load_state_dict(run / "checkpoints" / "step-00000004" / "models" / "net")
    for k, v in final.net.state_dict().items():
        assert torch.equal(v, ckpt_net[k])

    # --resume reads method, preset and overrides from the run; new overrides extend it
    _gs3d("train", "--out", str(run), "--resume", "train.max_steps=6")
    assert "resumed from" in capsys.readouterr().err
    snap = json.loads((run / "config.json").read_text())
    assert (
        snap["overrides"] == ["width=8", "train.max_steps=6"] and snap["trainer"]["max_steps"] == 6
    )
    assert [r["step"] for r in read_metrics(run / "logs" / "metrics.jsonl") if "loss" in r] == list(
        range(1, 7)
    )
    final = toy.ToyMethod.from_pretrained(run / "final")
    ckpt_net = load_state_dict(run / "checkpoints" / "step-00000006" / "models" / "net")
    assert all(torch.equal(v, ckpt_net[k]) for k, v in final.net.state_dict().items())


def test_training_cli_exports_ema_weights_and_inits_from_a_previous_run(tmp_path, toy_registered):
    toy = toy_registered
    first = tmp_path / "first"
    _gs3d(
        "train", "--method", "toy", "--preset", "tiny", "--out", str(first), "train.ema_decay=0.5"
    )
    shadow = load_state(first / "checkpoints" / "step-00000004", "trainer")["ema"]["shadow"]
    live = load_state_dict(first / "checkpoints" / "step-00000004" / "models" / "net")
    final = toy.ToyMethod.from_pretrained(first / "final")
    for k, v in final.net.state_dict().items():
        assert torch.equal(v, shadow[f"net.{k}"])
    assert not all(torch.equal(v, live[k]) for k, v in final.net.state_dict().items())

    # --init: a new run (another stage, say) starts from those weights; lr=0 keeps them as is
    second = tmp_path / "second"
    _gs3d(
        "train",
        "--method",
        "toy",
        "--preset",
        "tiny",
        "--out",
        str(second),
        "--init",
        str(first / "final"),
        "lr=0",
    )
    again = toy.ToyMethod.from_pretrained(second / "final")
    for k, v in again.state_dict().items():
        assert torch.equal(v, final.state_dict()[k])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "nope", "--out", "{run}"], "unknown method 'nope' (available: toy)"),
        (["--method", "toy", "--preset", "huge", "--out", "{run}"], "unknown preset 'huge'"),
        (
            ["--method", "toy", "--preset", "tiny", "--out", "{run}", "train.max_step=3"],
            "has no field 'train.max_step'",
        ),
        (
            ["--method", "toy", "--preset", "tiny", "--out", "{run}", "--data", "{tmp}/missing"],
            "--data {tmp}/missing: no such file",
        ),
        (
            ["--method", "toy", "--preset", "tiny", "--out", "{run}", "--stage", "fine"],
            "toy: unknown stage 'fine'",
        ),
        (["--method", "toy", "--out", "{run}"], "unknown preset 'paper' (available: tiny)"),
        (["--out", "{run}"], "--method is required"),
    ],
)
def test_training_cli_errors_are_one_clear_line(tmp_path, toy_registered, capsys, args, message):
    args = [a.format(run=tmp_path / "run", tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *args])
    assert exit_info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err


def test_training_cli_refuses_existing_run_and_wrong_method_on_resume(
    tmp_path, toy_registered, capsys
):
    run = tmp_path / "run"
    _gs3d("train", "--method", "toy", "--preset", "tiny", "--out", str(run), "train.max_steps=2")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["train", "--method", "toy", "--preset", "tiny", "--out", str(run)])
    assert "already holds a run" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SystemExit):
        main(["train", "--method", "other", "--out", str(run), "--resume"])
    assert "is a run of method 'toy', not 'other'" in " ".join(capsys.readouterr().err.split())


@pytest.fixture
def toy_with_stages(toy):
    from gs_core.plugins.specs import StageSpec

    stages = (StageSpec("main"), StageSpec("polish", init_from="main"))
    _register_toy(toy, method_class=toy.ToyMethod, stages=stages)
    yield toy
    reset_registry()


def test_training_cli_stages_come_from_the_method_spec(tmp_path, toy_with_stages, capsys):
    run = tmp_path / "run"
    _gs3d("train", "--method", "toy", "--preset", "tiny", "--out", str(run), "train.max_steps=2")
    assert json.loads((run / "config.json").read_text())["stage"] == "main"  # the first
    capsys.readouterr()
    for stage, message in (
        ("fine", "--stage fine: method 'toy' has the stages main, polish"),
        # passes the spec (the toy itself only trains "main"); without --init it is told where
        # the stage usually starts from
        ("polish", "note: stage 'polish' of toy usually starts from the 'main' stage's weights"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--method", "toy", "--preset", "tiny", "--out", str(tmp_path / stage),
                  "--stage", stage])  # fmt: skip
        assert exit_info.value.code == 2
        assert message in " ".join(capsys.readouterr().err.split())


def test_training_cli_budget_stops_with_a_resumable_checkpoint(tmp_path, toy_registered, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    _gs3d(
        "train", "--method", "toy", "--preset", "tiny", "--data", str(data), "--out", str(run),
        "--budget", "0.000001",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "stopped (budget) at step 1" in err and "--resume" in err
    assert not (run / "final").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000001"]
    _gs3d("train", "--out", str(run), "--resume")
    assert "trained toy for 4 steps" in capsys.readouterr().err

"""``scripts/train_small.py`` runs end to end on CPU with the tiny preset and a tiny teacher."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "train_small.py"
SUMMARISE = Path(__file__).resolve().parents[1] / "scripts" / "summarise_runs.py"
SHEET = Path(__file__).resolve().parents[1] / "scripts" / "student_sheet.py"
PULL = Path(__file__).resolve().parents[1] / "scripts" / "verifier_pull.py"


@pytest.fixture(scope="module")
def script():
    from gs_core.testing import load_script

    return load_script(SCRIPT, "dd3g_train_small")


def _args(teacher, out, *extra):
    return [
        "--teacher",
        str(teacher),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--steps",
        "2",
        "--student-images",
        "3",
        "--eval-objects",
        "2",
        "--ddim-steps",
        "2",
        "--device",
        "cpu",
        *extra,
    ]


def test_train_small_tiny(script, tiny_teacher_dir, tmp_path):
    out = tmp_path / "out"
    res = script.main(
        _args(
            tiny_teacher_dir,
            out,
            "--variants",
            "pepd_joint,pd_es,splatter_es,hybrid_es,pepd_joint+eta=0.1",
            "--set",
            "iv_random_background=false",
            "--quadruples-per-image",
            "2",
            "--student-elevation",
            "-20",
            "20",
            "--eval-elevation",
            "-15",
            "15",
        )
    )
    saved = json.loads((out / "results.json").read_text())
    # Each student image is seen from its own hidden elevation, and C is at it.
    from gs_method_dd3g.procedural_evaluation import input_elevations
    from gs_method_dd3g.quadruples import QuadrupleSet

    assert saved["student_elevation"] == [-20.0, 20.0]
    # ... and the evaluation's inputs too, their ring12 targets staying at elevation 0
    assert saved["eval_elevation"] == [-15.0, 15.0]
    shown = input_elevations(out / "work" / "eval-inputs")
    assert shown.shape == (2,) and 0 < shown.abs().max() <= 15
    assert input_elevations(out / "work" / "eval").abs().max() == 0
    seen = input_elevations(out / "work" / "student")
    assert seen.shape == (3,) and seen.abs().max() <= 20 and len(set(seen.tolist())) == 3
    quads = QuadrupleSet.load(out / "work" / "quadruples")
    torch.testing.assert_close(quads.elevations, seen.repeat_interleave(2)[:, None].expand(6, 4))
    probe = "pepd_joint+eta=0.1"
    assert saved["variants"].keys() == {"pepd_joint", "pd_es", "splatter_es", "hybrid_es", probe}
    # A probe trains its row with its own setting on top of the lease's, in no ordering.
    assert saved["variants"][probe]["settings"] == ["eta=0.1"]
    assert saved["variants"][probe]["objective"] == "joint"
    probed = json.loads((out / "checkpoints" / probe / "config.json").read_text())
    assert probed["eta"] == 0.1 and probed["iv_random_background"] is False
    assert all(probe not in o["order"] for o in saved["orderings"].values())
    assert {"table2_splatter_below_pd", "table2_hybrid_below_splatter"} <= set(saved)
    assert saved["orderings"]["table2"]["order"] == ["hybrid_es", "splatter_es", "pd_es"]
    assert saved["missing"] == {} and saved["failed_runs"] == []
    assert saved["equal_steps"] == 2
    # the no-3D references: a blank view scores below copying the input to every target
    base = saved["baselines"]
    assert base["blank_white"]["psnr"] < base["input_copied"]["psnr"]
    assert saved["orderings"]["table2"]["beyond_spread"] is None  # one seed: no spread known
    for v in saved["variants"].values():
        assert 0 < v["psnr"] < 60 and -1 <= v["ssim"] <= 1
        assert len(v["per_object"]) == 2 and v["steps"] == 2
    # 3 images x 2 trajectories each (IV-A's several per image), recorded for joining
    assert res["quadruples"] == 6 and saved["quadruples_per_image"] == 2
    assert saved["protocol"] == "ring12+alignment"
    assert saved["overrides"] == ["iv_random_background=false"]
    assert saved["verification"] == {
        "reduction": "mean",
        "iv_only_schedule": "prolificdreamer",
        "random_background": False,
        "guidance_scale": 5.0,
    }
    trained = json.loads((out / "checkpoints" / "pepd_joint" / "config.json").read_text())
    assert trained["iv_random_background"] is False  # applied, not only recorded
    assert trained["eta"] == 0.4  # the probe's setting stays its own
    shards = list((out / "checkpoints" / "pepd_joint").glob("*.safetensors"))
    assert shards and all(s.stat().st_size <= 16 * 2**20 for s in shards)


def test_seeds_in_child_processes_evaluated_along_the_way(
    script, tiny_teacher_dir, tmp_path, monkeypatch, capsys
):
    """Two seeds of two variants, two child processes at once, evaluated at every step: the
    tables carry the spread over seeds and every run's curve. gsplat's build starts before
    the quadruples are made, and the children start with its result."""
    import gs_core.rendering
    import gs_method_dd3g.quadruples

    order = []
    real_build = gs_core.rendering.build_in_background
    real_quadruples = gs_method_dd3g.quadruples.generate_quadruples

    def build(device):
        order.append("build")
        future = real_build(device)
        future.result()  # the CPU's build is None; a GPU's reason would print like this one
        patched = type(future)()
        patched.set_result("test: no gsplat")
        return patched

    def quadruples(*args, **kwargs):
        order.append("quadruples")
        return real_quadruples(*args, **kwargs)

    monkeypatch.setattr(gs_core.rendering, "build_in_background", build)
    monkeypatch.setattr(gs_method_dd3g.quadruples, "generate_quadruples", quadruples)
    out = tmp_path / "out"
    res = script.main(
        _args(
            tiny_teacher_dir,
            out,
            "--variants",
            "pepd_es,pepd_iv",
            "--seeds",
            "2",
            "--jobs",
            "2",
            "--eval-every",
            "1",
        )
    )
    assert res["failed_runs"] == [] and len(res["runs"]) == 4
    assert all([e["step"] for e in r["evals"]] == [1, 2] for r in res["runs"])
    for v in res["variants"].values():
        assert v["seeds"] == [0, 1] and len(v["psnr_per_seed"]) == 2 and v["psnr_std"] >= 0
    t3 = res["orderings"]["table3"]
    assert t3["order"] == ["pepd_iv", "pepd_es"] and isinstance(t3["beyond_spread"], bool)
    assert order == ["build", "quadruples"]
    assert "render with the torch backend: test: no gsplat" in capsys.readouterr().out


def test_a_lease_gives_one_row_more_seeds_than_the_others(script, tmp_path):
    """``--seeds-of`` sets one variant's seed count; the runs go seed by seed. A bad entry
    stops the script before any data is made, naming the entry."""
    from gs_method_dd3g.tables import seed_plan

    probe = "splatter_es+splatter.down_channels=[24,48]"
    plan = seed_plan(["pd_es", "splatter_es", probe], 2, 2, ["splatter_es=4", f"{probe}=1"])
    assert plan == [
        ("pd_es", 2),
        ("splatter_es", 2),
        (probe, 2),
        ("pd_es", 3),
        ("splatter_es", 3),
        ("splatter_es", 4),
        ("splatter_es", 5),
    ]
    assert seed_plan(["pd_es"], 0, 3) == [("pd_es", 0), ("pd_es", 1), ("pd_es", 2)]
    for entry, says in (
        ("hybrid_es=2", "is not one of the variants"),
        ("pd_es=0", "positive integer"),
        ("pd_es", "NAME=N"),
    ):
        with pytest.raises(ValueError, match=says):
            seed_plan(["pd_es"], 0, 1, [entry])
    with pytest.raises(SystemExit, match="--seeds-of: 'pd_es=x'"):
        script.main(
            _args(tmp_path / "teacher", tmp_path / "out", "--variants", "pd_es")
            + ["--seeds-of", "pd_es=x"]
        )
    assert not (tmp_path / "out").exists()


def test_tables_are_read_at_the_last_step_every_run_reached():
    from gs_method_dd3g.tables import aggregate, orderings

    def run(variant, seed, curve):
        return {
            "variant": variant,
            "seed": seed,
            "evals": [{"step": s, "psnr": p, "ssim": 0.5, "objects": []} for s, p in curve.items()],
        }

    records = [
        run("pepd_iv", 0, {100: 10.0, 200: 11.0}),
        run("pepd_iv", 1, {100: 10.4, 200: 11.4}),
        run("pepd_es", 0, {100: 12.0}),  # stopped by its budget before step 200
        run("pepd_es", 1, {100: 12.2, 200: 13.0}),
        run("pepd_joint", 0, {100: 13.0, 200: 14.0}),
        run("pepd_joint", 1, {100: 12.0, 200: 14.0}),
    ]
    crashed_early = {"variant": "pepd_iv", "seed": 2, "evals": []}
    agg = aggregate([*records, crashed_early])  # left out, not a table-wide failure
    assert agg["step"] == 100
    assert agg["variants"]["pepd_es"]["psnr"] == pytest.approx(12.1)
    t3 = orderings(agg["variants"])["table3"]
    assert t3["holds"] is True
    # joint 12.5 (std 0.71) vs es 12.1: the order holds but not beyond the seed spread
    assert t3["beyond_spread"] is False
    assert t3["smallest_margin_db"] == pytest.approx(0.4)


def test_leases_with_other_seeds_join_one_table(script, tiny_teacher_dir, tmp_path, capsys):
    """A later lease trains other seeds (--first-seed); summarise_runs.py joins the two
    results into one table with the spread over all seeds, and refuses what cannot join."""
    from gs_core.testing import load_script

    variants = ("--variants", "pepd_es,pd_es")
    a = script.main(_args(tiny_teacher_dir, tmp_path / "a", *variants))
    b = script.main(_args(tiny_teacher_dir, tmp_path / "b", *variants, "--first-seed", "1"))
    assert b["seeds"] == [1] and {r["seed"] for r in b["runs"]} == {1}
    assert (tmp_path / "b" / "checkpoints" / "pepd_es" / "config.json").is_file()

    summarise = load_script(SUMMARISE, "dd3g_summarise_runs")
    files = [str(tmp_path / d / "results.json") for d in ("a", "b")]
    out = tmp_path / "tables.json"
    joined = summarise.main([*files, "--out", str(out)])
    assert json.loads(out.read_text())["variants"].keys() == {"pepd_es", "pd_es"}
    for name in ("pepd_es", "pd_es"):
        row = joined["variants"][name]
        assert row["seeds"] == [0, 1]
        assert row["psnr_per_seed"] == [a["variants"][name]["psnr"], b["variants"][name]["psnr"]]
        assert row["psnr_std"] > 0
    t2 = joined["orderings"]["table2"]
    assert t2["order"] == ["pd_es", "pepd_es"] and isinstance(t2["beyond_spread"], bool)
    assert "table2_pd_below_pepd" in joined and joined["equal_steps"] == 2
    assert "pepd_es" in capsys.readouterr().out  # the markdown table

    # A lease cut short: its OUT/work/runs folder (setup.json + run records) joins as it is,
    # the same table; a run without an evaluation yet is left out by name.
    runs_b = tmp_path / "b" / "work" / "runs"
    setup = json.loads((runs_b / "setup.json").read_text())
    assert {k: setup[k] for k in summarise.SETUP} == {k: b[k] for k in summarise.SETUP}
    from_folder = summarise.main([files[0], str(runs_b)])
    assert from_folder["variants"] == joined["variants"]
    # A record kept gzip-compressed (measurements/*.json.gz) joins as the plain file does.
    packed = tmp_path / "b.results.json.gz"
    packed.write_bytes(gzip.compress((tmp_path / "b" / "results.json").read_bytes()))
    assert summarise.main([files[0], str(packed)])["variants"] == joined["variants"]
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip")
    with pytest.raises(SystemExit):
        summarise.main([files[0], str(tmp_path / "broken.json.gz")])
    assert "broken.json.gz: not a readable results.json" in capsys.readouterr().err
    cut = tmp_path / "cut"
    shutil.copytree(runs_b, cut)
    record = json.loads((cut / "pd_es-s1.json").read_text())
    (cut / "pd_es-s1.json").write_text(json.dumps({**record, "evals": []}))
    partial = summarise.main([files[0], str(cut)])
    assert partial["left_out"] == ["pd_es:1"] and partial["variants"]["pd_es"]["seeds"] == [0]
    (cut / "setup.json").unlink()
    with pytest.raises(SystemExit):
        summarise.main([files[0], str(cut)])
    assert "without setup.json" in capsys.readouterr().err

    with pytest.raises(SystemExit):  # the same seeds twice
        summarise.main([files[0], files[0]])
    assert "seed 0 is also in" in capsys.readouterr().err
    other = json.loads((tmp_path / "b" / "results.json").read_text())
    other["ddim_steps"] = 50
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit):  # another setup
        summarise.main([files[0], str(tmp_path / "other.json")])
    assert "'ddim_steps'" in capsys.readouterr().err
    other = json.loads((tmp_path / "b" / "results.json").read_text())
    assert other["teacher_sha256"] == a["teacher_sha256"] and len(a["teacher_sha256"]) == 64
    other["teacher_sha256"] = "0" * 64  # a teacher rebuilt under the same file name
    (tmp_path / "rebuilt.json").write_text(json.dumps(other))
    with pytest.raises(SystemExit):
        summarise.main([files[0], str(tmp_path / "rebuilt.json")])
    assert "'teacher_sha256'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # refuses to overwrite
        summarise.main([*files, "--out", str(out)])
    assert "exists" in capsys.readouterr().err


def test_fitted_steps_take_the_slowest_run_and_leave_room_for_evaluations(script):
    probes = [{"rate": 4.0, "eval_s": 10.0}, {"rate": 2.5, "eval_s": 20.0}]
    # 0.85 x 1000 s - 4 x 20 s = 770 s at the slowest 2.5 steps/s -> 1925 -> 1920
    assert script.fitted_steps(probes, 1000.0, 4, 0.85) == 1920
    assert script.fitted_steps(probes, 1000.0, 4, 0.85, multiple=100) == 1900
    with pytest.raises(SystemExit, match="probe-s"):
        script.fitted_steps([*probes, {"rate": None, "eval_s": 1.0}], 1000.0, 4, 0.85)
    with pytest.raises(SystemExit, match="evaluations"):
        script.fitted_steps(probes, 50.0, 4, 0.85)


def test_a_budget_without_steps_is_probed_then_fitted(script, tiny_teacher_dir, tmp_path):
    """With --budget-s and no --steps every run is first timed under the same load; the runs
    then share the step count the slowest fits, evaluated --evals times."""
    out = tmp_path / "out"
    # --jobs 0: every run at once, as the device job asks
    args = _args(tiny_teacher_dir, out, "--variants", "pepd_es,pepd_iv", "--jobs", "0")
    args = args[: args.index("--steps")] + args[args.index("--steps") + 2 :]
    # --max-steps lifts the cap of the tiny preset's 4-step schedule.
    probe_args = ["--budget-s", "30", "--probe-s", "4", "--evals", "3", "--margin", "0.6"]
    res = script.main([*args, *probe_args, "--max-steps", "100000"])
    probe = res["probe"]
    assert {(r["variant"], r["seed"]) for r in probe["runs"]} == {("pepd_es", 0), ("pepd_iv", 0)}
    assert all(r["rate"] > 0 and r["eval_s"] > 0 for r in probe["runs"])
    steps = probe["steps"]
    # >= 3 for three distinct evaluations; how many more depends on the machine's load
    assert steps == script.fitted_steps(probe["runs"], 30.0, 3, 0.6) and steps >= 3
    every = probe["every"]
    assert every == -(-steps // 3)  # rounded up: three evaluations, the last at the end
    assert res["failed_runs"] == [] and res["equal_steps"] == steps
    assert all([e["step"] for e in r["evals"]] == [every, 2 * every, steps] for r in res["runs"])
    assert res["runs_at_once"] == 2
    with pytest.raises(SystemExit, match="--jobs: expected 0"):
        script.main([*args[: args.index("--jobs")], "--jobs", "-1", "--overwrite"])


def test_a_probe_fits_at_most_the_preset_schedule(script, tiny_teacher_dir, tmp_path):
    out = tmp_path / "out"
    args = _args(tiny_teacher_dir, out, "--variants", "pepd_es", "--jobs", "1")
    args = args[: args.index("--steps")] + args[args.index("--steps") + 2 :]
    res = script.main([*args, "--budget-s", "30", "--probe-s", "4", "--evals", "1"])
    # the tiny preset's schedule is 4 steps; the probe alone would fit at least 10
    assert res["probe"]["steps"] == 4 and res["equal_steps"] == 4


def test_an_earlier_run_is_not_overwritten_unasked(script, tiny_teacher_dir, tmp_path):
    from gs_core.io.atomic import OutputExistsError

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{}\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        script.main(_args(tiny_teacher_dir, out))
    assert (out / "results.json").read_text() == "{}\n"


def test_a_run_whose_probe_fails_is_left_out_and_the_rest_go_on(
    script, tiny_teacher_dir, tmp_path, monkeypatch
):
    calls = []

    def fake_launch(a, runs, quads, teacher, eval_root, out, argv, gsplat):
        calls.append((list(runs), list(argv)))
        work = out / "work"
        if "--probe" in argv:  # pepd_iv's probe crashes; pepd_es's is timed
            (work / "probe").mkdir(parents=True, exist_ok=True)
            rec = {"variant": "pepd_es", "seed": 0, "rate": 10.0, "eval_s": 1.0}
            (work / "probe" / "pepd_es-s0.json").write_text(json.dumps(rec))
            return ["pepd_iv:0"]
        (work / "runs").mkdir(parents=True, exist_ok=True)
        for n, s in runs:
            e = {"step": a.steps, "psnr": 10.0, "ssim": 0.5, "objects": []}
            rec = {"variant": n, "seed": s, "evals": [e]}
            (work / "runs" / f"{n}-s{s}.json").write_text(json.dumps(rec))
        return []

    monkeypatch.setattr(script, "_launch", fake_launch)
    args = _args(tiny_teacher_dir, tmp_path / "out", "--variants", "pepd_es,pepd_iv", "--jobs", "2")
    args = args[: args.index("--steps")] + args[args.index("--steps") + 2 :]
    res = script.main([*args, "--budget-s", "100", "--evals", "2", "--max-steps", "100000"])
    assert calls[1][0] == [("pepd_es", 0)]  # the real runs: without the failed one
    assert res["probe"]["failed"] == ["pepd_iv:0"] and "pepd_iv:0" in res["failed_runs"]
    assert res["probe"]["steps"] == script.fitted_steps(res["probe"]["runs"], 100.0, 2, 0.85)
    assert res["variants"].keys() == {"pepd_es"}


def test_a_step_longer_than_the_probe_window_still_gives_a_rate(script, tmp_path, monkeypatch):
    """On a loaded machine one step can outlast the whole window: the window then stays open
    until a second step ends, so the probe still times the run instead of failing it."""
    clock = iter([0.0, 10.0, 16.0, 17.0])
    monkeypatch.setattr(script.time, "time", lambda: next(clock))
    go = tmp_path / "go"
    go.write_text(json.dumps({"start": 0.0, "end": 4.0}))
    window = script._ProbeWindow(tmp_path / "r.ready", go, 4.0)
    assert window.step(1) is None  # t=0: the first step end in the window
    assert window.step(2) is None  # t=10: past the end, but only one step timed so far
    assert window.step(3) == "the probe's window closed"
    assert window.rate() == pytest.approx(1 / 10)


def test_term_gradients_show_the_verifier_scale_each_reduction_gives(tiny_teacher_dir, tmp_path):
    """``scripts/term_gradients.py``: every term's gradient norm; ``batch_mean`` is ``mean``
    times one view's latent entries (4 x 8 x 8 for the tiny teacher), the other terms equal."""
    from gs_core.testing import load_script

    terms = load_script(SCRIPT.parent / "term_gradients.py", "dd3g_term_gradients")
    out = terms.main(
        [
            "--teacher",
            str(tiny_teacher_dir),
            "--preset",
            "tiny",
            "--objects",
            "2",
            "--ddim-steps",
            "2",
            "--draws",
            "2",
            "--work",
            str(tmp_path / "w"),
            "--json",
            str(tmp_path / "terms.json"),
        ]
    )
    rows = out["rows"]
    assert set(rows) == {"batch_mean", "mean"}
    assert set(rows["mean"]) == {"es_mse", "iv", "opacity"}
    for (_, g_sum), (_, g_mean) in zip(rows["batch_mean"]["iv"], rows["mean"]["iv"], strict=True):
        assert g_mean > 0 and g_sum == pytest.approx(g_mean * 4 * 8 * 8, rel=1e-3)
    for a, b in zip(rows["batch_mean"]["es_mse"], rows["mean"]["es_mse"], strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    assert json.loads((tmp_path / "terms.json").read_text())["rows"].keys() == rows.keys()


# A results file's shared setup and one run's record, for the joining tests.
RECORD_SETUP = {
    "preset": "small",
    "overrides": [],
    "teacher_sha256": "a" * 64,
    "quadruples": 4,
    "ddim_steps": 2,
    "protocol": "ring12+alignment",
    "student_seed": 1919,
    "eval_seed": 7,
}


def _run_record(variant, seed, psnr, step=10):
    ev = {"step": step, "psnr": psnr, "ssim": 0.5, "objects": []}
    return {"variant": variant, "seed": seed, "evals": [ev]}


def test_runs_through_different_verifiers_do_not_share_a_table(tmp_path, capsys):
    """Session 46 changed how L_IV is normalised: joint / IV runs of older records (no
    'verification' key: batch_mean) do not join newer ones, explicit supervision runs do."""
    from gs_core.testing import load_script

    summarise = load_script(SUMMARISE, "dd3g_summarise_runs")
    setup, run = RECORD_SETUP, _run_record
    new = {"reduction": "mean", "iv_only_schedule": "prolificdreamer"}
    files = {
        "old_es": {**setup, "runs": [run("pepd_es", 0, 18.0), run("pd_es", 0, 18.5)]},
        "old_joint": {**setup, "runs": [run("pepd_joint", 0, 13.6)]},
        "new_joint": {
            **setup,
            "verification": new,
            "runs": [run("pepd_joint", 1, 18.4), run("pepd_joint+eta=0.2", 1, 18.9)],
        },
        "new_iv": {**setup, "verification": new, "runs": [run("pepd_iv", 1, 15.0)]},
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    joined = summarise.main([str(paths[k]) for k in ("old_es", "new_joint", "new_iv")])
    probe = "pepd_joint+eta=0.2"
    assert joined["variants"].keys() == {"pepd_es", "pd_es", "pepd_joint", "pepd_iv", probe}
    assert f"| {probe} | probe of pepd_joint | 1 | 18.90" in capsys.readouterr().out
    filled = {**new, "random_background": True, "guidance_scale": 5.0}  # before session 50
    assert joined["verification"] == [json.dumps(filled, sort_keys=True)]
    with pytest.raises(SystemExit):
        summarise.main([str(paths[k]) for k in ("old_joint", "new_joint")])
    err = capsys.readouterr().err
    assert "'verification'" in err and "batch_mean" in err

    # An older lease whose joint run a newer one supersedes still gives its ES rows when
    # joined as PATH@VARIANT,...; a selection naming nothing it holds, or no variant, is refused.
    mixed = tmp_path / "old_mixed.json"
    mixed.write_text(
        json.dumps({**setup, "runs": [run("pepd_es", 1, 18.0), run("pepd_joint", 1, 13.6)]})
    )
    with pytest.raises(SystemExit):
        summarise.main([str(paths["new_joint"]), str(mixed)])
    assert "'verification'" in capsys.readouterr().err
    selected = summarise.main([str(paths["new_joint"]), f"{mixed}@pepd_es"])
    assert selected["variants"].keys() == {"pepd_es", "pepd_joint", "pepd_joint+eta=0.2"}
    assert selected["variants"]["pepd_joint"]["psnr"] == pytest.approx(18.4)
    assert selected["files"][1].endswith("old_mixed.json@pepd_es")
    with pytest.raises(SystemExit):
        summarise.main([str(paths["new_joint"]), f"{mixed}@pd_es"])
    assert "no runs of pd_es" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        summarise.main([str(paths["new_joint"]), f"{mixed}@pepd"])
    assert "after '@' expected variant names" in capsys.readouterr().err


def test_verifier_settings_join_as_values_whether_set_or_preset(tmp_path, capsys):
    """Session 50 made the small preset verify on white at guidance 1. A lease that set both by
    --set (its record lacks the keys) joins one that has them from the preset; one that ran
    Eq. 8's random backgrounds at guidance 5 does not, except for its ES runs; overrides of
    other fields still split the table."""
    from gs_core.testing import load_script

    summarise = load_script(SUMMARISE, "dd3g_summarise_runs_settings")
    setup, run = RECORD_SETUP, _run_record
    before = {"reduction": "mean", "iv_only_schedule": "prolificdreamer"}
    white = {**before, "random_background": False, "guidance_scale": 1.0}
    files = {
        "set": {
            **setup,
            "overrides": ["iv_random_background=false", "iv_guidance_scale=1"],
            "verification": before,
            "runs": [run("pepd_joint", 1, 18.2), run("pepd_iv", 1, 16.8)],
        },
        "preset": {
            **setup,
            "overrides": [],
            "verification": white,
            "runs": [run("pepd_joint", 2, 18.1), run("pepd_es", 2, 17.9)],
        },
        "eq8": {
            **setup,
            "overrides": [],
            "verification": before,
            "runs": [run("pepd_joint", 0, 16.1), run("pepd_es", 0, 17.6)],
        },
        "eta": {**setup, "overrides": ["eta=0.2"], "verification": white, "runs": []},
        "two_per_image": {
            **setup,
            "overrides": [],
            "verification": white,
            "quadruples_per_image": 2,
            "runs": [run("pepd_es", 3, 18.3)],
        },
        "hidden_student_elevation": {
            **setup,
            "verification": white,
            "student_elevation": [-30.0, 30.0],
            "runs": [run("pepd_es", 4, 17.6)],
        },
        "hidden_eval_elevation": {
            **setup,
            "verification": white,
            "eval_elevation": [-30.0, 30.0],
            "runs": [run("pepd_es", 5, 17.0)],
        },
        "flat": {
            **setup,
            "verification": white,
            "student_elevation": [0.0, 0.0],
            "eval_elevation": [0.0, 0.0],
            "runs": [run("pepd_es", 6, 17.8)],
        },
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    assert summarise.verification(files["set"]) == white
    assert summarise.verification(files["eq8"]) == {
        **before,
        "random_background": True,
        "guidance_scale": 5.0,
    }
    joined = summarise.main([str(paths["set"]), str(paths["preset"]), f"{paths['eq8']}@pepd_es"])
    v = joined["variants"]
    assert v["pepd_joint"]["seeds"] == [1, 2] and v["pepd_es"]["seeds"] == [0, 2]
    assert joined["verification"] == [json.dumps(white, sort_keys=True)]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        summarise.main([str(paths["preset"]), str(paths["eq8"])])
    err = capsys.readouterr().err
    assert "'verification'" in err and "'random_background': True" in err
    with pytest.raises(SystemExit):
        summarise.main([str(paths["preset"]), str(paths["eta"])])
    assert "'overrides'" in capsys.readouterr().err
    # Records without the key made one quadruple per image; other data does not join them.
    with pytest.raises(SystemExit):
        summarise.main([str(paths["preset"]), str(paths["two_per_image"])])
    assert "'quadruples_per_image' is 2" in capsys.readouterr().err
    # Records without the keys saw every image at elevation 0, as a record that says so.
    assert summarise.main([str(paths["preset"]), str(paths["flat"])])["variants"]["pepd_es"][
        "seeds"
    ] == [2, 6]
    for name in ("hidden_student_elevation", "hidden_eval_elevation"):
        with pytest.raises(SystemExit):
            summarise.main([str(paths["preset"]), str(paths[name])])
        key = name.removeprefix("hidden_")
        assert f"'{key}' is [-30.0, 30.0]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("pepd", "unknown variant 'pepd'"),
        ("pepd_joint+eta", "is not KEY=VALUE"),
        ("pepd_joint+objective=es", "fixed by the row"),
        ("pepd_joint+iv_reduction=batch_mean", "fixed by the row"),
        ("pepd_joint+no_such_field=1", "has no field"),
        ("pepd_joint+eta=-1", "invalid override"),
    ],
)
def test_a_bad_variant_is_refused_before_any_data(script, tmp_path, capsys, variant, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        script.main(_args(tmp_path / "no-teacher", out, "--variants", f"pepd_es,{variant}"))
    assert "--variants" in str(e.value) and message in str(e.value)
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--quadruples-per-image", "--quadruple-batch"])
def test_a_bad_quadruple_count_is_refused_before_any_data(script, tmp_path, flag):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        script.main(_args(tmp_path / "no-teacher", out, flag, "0"))
    assert str(e.value) == f"{flag}: expected a positive integer, got 0"
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--student-elevation", "--eval-elevation"])
@pytest.mark.parametrize("low,high", [("-40", "0"), ("10", "-10")])
def test_an_elevation_outside_the_teachers_is_refused(script, tmp_path, flag, low, high):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        script.main(_args(tmp_path / "no-teacher", out, flag, low, high))
    assert str(e.value).startswith(f"{flag}: expected -30 <= LOW <= HIGH <= 30")
    assert not out.exists()


def test_a_probe_keeps_a_list_value_whole(script, tmp_path):
    """A capacity-matched splatter network is a probe with list-valued settings: the list's
    commas do not split the variants, here or in summarise_runs.py's selections."""
    from gs_core.testing import load_script
    from gs_method_dd3g import DD3GConfig
    from gs_method_dd3g.tables import parse_variant, split_variants

    probe = "splatter_es+splatter.down_channels=[24,48,96,192]+splatter.up_channels=[192,96,48,24]"
    assert split_variants(f"pd_es,{probe},") == ["pd_es", probe]
    cfg = DD3GConfig.preset("small", generator="splatter").with_overrides(parse_variant(probe)[1])
    assert cfg.splatter.down_channels == [24, 48, 96, 192]
    assert cfg.splatter.up_channels == [192, 96, 48, 24]
    wider = "pd_es+decoder.log_scale_range=[-6.8,-0.8]"  # a tuple, the same way
    assert split_variants(f"{wider},pd_es") == [wider, "pd_es"]
    cfg = DD3GConfig.preset("small", generator="pd").with_overrides(parse_variant(wider)[1])
    assert cfg.decoder.log_scale_range == (-6.8, -0.8)
    with pytest.raises(ValueError, match="never closed"):
        split_variants("pd_es,splatter_es+splatter.down_channels=[24,48")
    with pytest.raises(ValueError, match="closes no"):
        split_variants("pd_es],splatter_es")
    summarise = load_script(SUMMARISE, "dd3g_summarise_runs")
    assert summarise.split_selection(f"r.json@pd_es,{probe}") == (Path("r.json"), ["pd_es", probe])
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match="--variants: .* never closed"):
        script.main(_args(tmp_path / "no-teacher", out, "--variants", "pd_es,splatter_es+x=[1,2"))
    assert not out.exists()


def test_probe_variants_name_their_row_and_settings():
    from gs_method_dd3g.tables import aggregate, orderings, parse_variant

    assert parse_variant("pepd_joint") == ("pepd_joint", [])
    assert parse_variant("pepd_joint+eta=0.2+iv_random_background=false") == (
        "pepd_joint",
        ["eta=0.2", "iv_random_background=false"],
    )

    def run(variant, seed, psnr):
        return _run_record(variant, seed, psnr, step=5)

    agg = aggregate([run("pepd_es", 0, 17.0), run("pepd_joint", 0, 16.0),
                     run("pepd_joint+eta=0.2", 0, 18.0), run("pepd_iv", 0, 13.0)])  # fmt: skip
    row = agg["variants"]["pepd_joint+eta=0.2"]
    assert row["rows"] == ["probe of pepd_joint"] and row["settings"] == ["eta=0.2"]
    assert "settings" not in agg["variants"]["pepd_joint"]
    t3 = orderings(agg["variants"])["table3"]
    assert t3["order"] == ["pepd_iv", "pepd_es", "pepd_joint"] and t3["holds"] is False


def test_student_sheet_shows_students_and_what_their_draws_average_to(tmp_path, capsys):
    """A generator that sees the noise (PEPD) gives different draws; PD only cannot, so its
    draws are one and averaging them changes nothing."""
    from PIL import Image

    from gs_core.testing import load_script
    from gs_method_dd3g import DD3G, DD3GConfig

    sheet_script = load_script(SHEET, "dd3g_student_sheet")
    dirs = []
    for generator in ("pepd", "pd"):
        torch.manual_seed(0)
        d = tmp_path / generator
        # fp16, as train_small.py saves its students
        model = DD3G(DD3GConfig.preset("tiny", generator=generator)).to(torch.float16)
        model.save_pretrained(d)
        dirs.append(str(d))
    out, js = tmp_path / "sheet.png", tmp_path / "draws.json"
    args = [*dirs, "--out", str(out), "--json", str(js), "--objects", "2", "--draws", "2"]
    res = sheet_script.main([*args, "--device", "cpu"])
    a, b = res["students"]["A"], res["students"]["B"]
    assert res["checkpoints"] == {"A": dirs[0], "B": dirs[1]}
    assert a["spread_x255"] > 0 and b["spread_x255"] == 0
    assert b["psnr_average"] == pytest.approx(b["psnr_single"], abs=1e-4)
    assert len(a["per_object"]) == 2 and json.loads(js.read_text())["draws"] == 2
    # Twelve turns from the input, -150 to +180; their mean is each object's PSNR of one draw.
    assert list(a["by_turn"]) == [f"{t:+d}" for t in range(-150, 181, 30)]
    for row in a["per_object"]:
        assert sum(row["by_turn"].values()) / 12 == pytest.approx(row["psnr_single"], 1e-5)
    size = DD3GConfig.preset("tiny").render_resolution
    with Image.open(out) as im:  # 2 rows of input + 3 views x (truth, A, B), 2 px apart
        assert im.size == (10 * (size + 2) + 2, 2 * (size + 2) + 2)
    assert "PSNR of the draws' average" in capsys.readouterr().out
    with pytest.raises(Exception, match="exists"):
        sheet_script.main([*args, "--device", "cpu"])
    # Where the Gaussians are: shares in [0, 1], sizes in pixels, per object and on average.
    for row in (a, b, *a["per_object"]):
        assert 0 <= row["share_inside"] <= 1 and 0 <= row["share_subpixel"] <= 1
        assert row["median_size_px"] > 0
    from gs_core.gaussians import Gaussians

    two = Gaussians(
        means=torch.tensor([[0.0, 0.1, 0.0], [0.0, -0.9, 0.0]]),
        quats=torch.tensor([[1.0, 0, 0, 0]] * 2),
        scales=torch.tensor([[0.001, 0.001, 0.002], [0.02, 0.01, 0.01]]),
        opacities=torch.ones(2),
        sh=torch.ones(2, 1, 3),
    )
    stats = sheet_script.gaussian_stats(two, pixel=0.01)
    assert stats["share_inside"] == 0.5 and stats["share_subpixel"] == 0.5
    assert stats["median_size_px"] == pytest.approx(0.2)  # the lower median of 0.2 and 2 px
    # The far side is one turn whichever side of 180 degrees a float azimuth falls.
    labels = [sheet_script.turn_label(t) for t in (-180.0, 179.9999, 180.0004, -90.0004, 0.0, 390)]
    assert labels == ["+180", "+180", "+180", "-90", "+0", "+30"]
    # The inputs seen from hidden elevations: the same objects, other scores, recorded.
    hidden = sheet_script.main(
        [*args, "--device", "cpu", "--overwrite", "--draws", "1", "--eval-elevation", "-30", "30"]
    )
    assert hidden["eval_elevation"] == [-30.0, 30.0] and res["eval_elevation"] == [0.0, 0.0]
    for k in ("A", "B"):
        before, after = res["students"][k]["per_object"], hidden["students"][k]["per_object"]
        assert [r["object"] for r in before] == [r["object"] for r in after]
        assert all(x["psnr_single"] != y["psnr_single"] for x, y in zip(before, after, strict=True))
    with pytest.raises(SystemExit, match="--eval-elevation: expected -30 <= LOW"):
        sheet_script.main([*args, "--device", "cpu", "--overwrite", "--eval-elevation", "0", "40"])


def test_verifier_pull_reports_how_the_teacher_pulls_each_image(tiny_teacher_dir, tmp_path):
    from gs_core.testing import load_script

    pull_script = load_script(PULL, "dd3g_verifier_pull")
    # The measures themselves: MSE's gradient points straight at the truth, blur keeps a flat
    # image flat.
    truth, image = torch.rand(1, 4, 3, 8, 8), torch.rand(1, 4, 3, 8, 8)
    assert pull_script.pull(image - truth, image, truth)["toward_truth"] == pytest.approx(1.0)
    assert pull_script.pull(truth - image, image, truth)["toward_truth"] == pytest.approx(-1.0)
    assert pull_script.pull(image, truth, truth)["toward_truth"] is None
    flat = torch.full((2, 3, 9, 9), 0.3)
    assert torch.allclose(pull_script.gaussian_blur(flat, 1.5), flat)

    js = tmp_path / "pull.json"
    args = ["--teacher", str(tiny_teacher_dir), "--preset", "tiny", "--objects", "1"]
    res = pull_script.main([*args, "--draws", "2", "--ddim-steps", "2", "--json", str(js)])
    for background in ("white", "random"):
        rows = res["rows"][background]
        assert rows["truth"]["toward_truth"] is None and rows["truth"]["rms_x255"] > 0
        assert rows["truth"]["signal_to_bias"] is None
        for version in ("blurred", "input copied"):
            assert -1 <= rows[version]["toward_truth"] <= 1
            want = rows[version]["rms_x255"] * rows[version]["toward_truth"]
            assert rows[version]["signal_to_bias"] == pytest.approx(
                want / rows["truth"]["rms_x255"]
            )
    # The teacher's own sample is checked on white only, where the teacher draws it.
    assert -1 <= res["rows"]["white"]["teacher sample"]["toward_truth"] <= 1
    assert "teacher sample" not in res["rows"]["random"]
    assert res["teacher_sample_psnr"] > 0
    assert json.loads(js.read_text())["verifier"]["reduction"] == "mean"
    with pytest.raises(Exception, match="exists"):
        pull_script.main([*args, "--json", str(js)])
    only_white = pull_script.main(
        [*args, "--draws", "1", "--ddim-steps", "1", "--backgrounds", "white"]
    )
    assert list(only_white["rows"]) == ["white"]
    # Other settings, the same teacher samples, so runs compare pair by pair: the second
    # object's reference latent must not depend on how many draws the first one took.
    two = ["--teacher", str(tiny_teacher_dir), "--preset", "tiny", "--objects", "2"]
    two += ["--ddim-steps", "1", "--backgrounds", "white"]
    one_draw = pull_script.main([*two, "--draws", "1"])
    more = pull_script.main([*two, "--draws", "3", "--set", "iv_guidance_scale=1"])
    assert more["teacher_sample_psnr"] == one_draw["teacher_sample_psnr"]
    with pytest.raises(SystemExit, match="--backgrounds"):
        pull_script.main([*args, "--backgrounds", "grey"])

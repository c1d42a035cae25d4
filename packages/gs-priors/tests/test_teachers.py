"""Procedural teachers: checkpoint layouts loaded by the real classes, cached training latents
equal to the prior's own encodings, training that learns, int8 packing, multi-view scoring."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("diffusers")

from gs_core.errors import FileFormatError, ValidationError  # noqa: E402
from gs_core.evaluation.novel_views import ViewPair, score_novel_views, view_pairs  # noqa: E402
from gs_core.procedural.generator import ProceduralConfig, generate  # noqa: E402
from gs_priors.teachers import (  # noqa: E402
    LAYOUTS,
    PAPER_GUIDANCE,
    TeacherConfig,
    TeacherTrainer,
    ViewBank,
    build_vae,
    load_teacher,
    write_teacher,
)
from gs_priors.teachers.data import BATCHES  # noqa: E402
from gs_priors.teachers.evaluation import multiview_samples, usefulness  # noqa: E402
from gs_priors.teachers.packing import pack_teacher, unpack_teacher  # noqa: E402
from gs_priors.teachers.training import _mix, conditioned_batch  # noqa: E402

SCRIPT = Path(__file__).parents[1] / "scripts" / "train_procedural_teachers.py"

NAMES = ("zero123", "zero123plus", "imagedream")
VIEWS = {"zero123": 4, "zero123plus": 7, "imagedream": 24}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("teachers")


@pytest.fixture(scope="module")
def datasets(root) -> dict[str, Path]:
    out = {}
    for name in NAMES:
        cfg = ProceduralConfig(
            objects=2,
            views=VIEWS[name],
            resolution=16,
            camera_layout=LAYOUTS[name],
            asymmetric=True,
            points=0,
            depth=False,
            normals=False,
            antialias=1,
            split="train",
        )
        generate(cfg, root / name, workers=0, progress=False)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def teachers(root) -> dict[str, Path]:
    vae = build_vae(TeacherConfig.preset("tiny-zero123"))
    vae.save_pretrained(root / "vae")
    return {
        n: write_teacher(TeacherConfig.preset(f"tiny-{n}"), root / f"t-{n}", root / "vae")
        for n in NAMES
    }


def test_presets_are_valid_and_checkpoints_load_through_the_real_classes(teachers):
    from gs_priors.imagedream import ImageDreamGuidance
    from gs_priors.zero123 import Zero123Guidance
    from gs_priors.zero123plus import Zero123PlusGuidance

    for name in NAMES:
        assert TeacherConfig.preset(name).prior == name
    classes = {
        "zero123": Zero123Guidance,
        "zero123plus": Zero123PlusGuidance,
        "imagedream": ImageDreamGuidance,
    }
    for name, d in teachers.items():
        prior = load_teacher(d)
        assert type(prior) is classes[name]
        assert json.loads((d / "teacher_config.json").read_text())["prior"] == name


@pytest.mark.parametrize("name", NAMES)
def test_cached_latents_give_the_priors_own_conditions(name, teachers, datasets):
    prior = load_teacher(teachers[name])
    prior.latent_sample = "mode"  # the cache stores posterior modes
    bank = ViewBank.load(datasets[name], 16)
    trainer = TeacherTrainer(prior, TeacherConfig.preset(f"tiny-{name}"), bank)
    batch = BATCHES[name](bank, 2, torch.Generator().manual_seed(0))
    x_cached, c_cached, _, per = conditioned_batch(prior, name, batch, trainer.cache)
    x_fresh, c_fresh, _, per2 = conditioned_batch(prior, name, batch, None)
    assert per == per2 == (4 if name == "imagedream" else 1)
    torch.testing.assert_close(x_cached, x_fresh, atol=1e-4, rtol=1e-4)
    for f in dataclasses.fields(c_cached):
        a, b = getattr(c_cached, f.name), getattr(c_fresh, f.name)
        if isinstance(a, torch.Tensor) and f.name != "reference_noise":
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=f.name)


def test_batches_pair_views_with_their_relative_cameras(datasets):
    bank = ViewBank.load(datasets["imagedream"], 16)
    b = BATCHES["imagedream"](bank, 3, torch.Generator().manual_seed(1))
    assert b.targets.shape == (3, 4, 4, 16, 16)
    torch.testing.assert_close(b.d_azimuth, torch.tensor([[0.0, 90.0, -180.0, -90.0]] * 3))
    torch.testing.assert_close(b.targets[:, 0], b.inputs)  # the front view faces the input
    bank = ViewBank.load(datasets["zero123plus"], 16)
    b = BATCHES["zero123plus"](bank, 2, torch.Generator().manual_seed(1))
    torch.testing.assert_close(b.d_azimuth[0], torch.tensor([30.0, 90, 150, -150, -90, -30]))
    torch.testing.assert_close(b.elevation[0], torch.tensor([30.0, -20] * 3))
    bank = ViewBank.load(datasets["zero123"], 16)
    b = BATCHES["zero123"](bank, 8, torch.Generator().manual_seed(1))
    assert (b.src != b.dst).all()


@pytest.mark.parametrize("name", NAMES)
def test_training_lowers_the_loss_and_saves_the_ema(name, teachers, datasets, root):
    cfg = TeacherConfig.preset(f"tiny-{name}", lr=3e-3, ema_decay=0.5, condition_dropout=0.0)
    prior = load_teacher(teachers[name])
    trainer = TeacherTrainer(prior, cfg, ViewBank.load(datasets[name], 16), seed=0)
    torch.manual_seed(0)
    with torch.no_grad():
        first = sum(float(trainer.loss()) for _ in range(4)) / 4
    trainer.train(steps=40, log=lambda _: None, log_every=20)
    torch.manual_seed(0)
    with torch.no_grad():
        last = sum(float(trainer.loss()) for _ in range(4)) / 4
    assert last < first
    trainer.use_ema()
    out = root / f"saved-{name}"
    import shutil

    shutil.copytree(teachers[name], out)
    trainer.save(out)
    reloaded = load_teacher(out)
    for p, q in zip(prior.unet.parameters(), reloaded.unet.parameters(), strict=True):
        torch.testing.assert_close(p.half().float(), q.float())


def test_cooldown_decays_the_rate_to_zero_over_the_runs_budget(teachers, datasets):
    """A run in several train() calls (one per checkpoint) decays over the budget set once:
    constant before the cooldown's share, linear to 0 at the end; without it, constant."""
    cfg = TeacherConfig.preset("tiny-zero123", warmup_steps=0, cooldown=0.5, lr=1e-3)
    prior = load_teacher(teachers["zero123"])
    trainer = TeacherTrainer(prior, cfg, ViewBank.load(datasets["zero123"], 16), seed=0)
    assert trainer.lr_factor() == 1.0  # no horizon yet: nothing to decay towards
    trainer.set_horizon(steps=8)
    factors = []
    for _ in range(4):  # four calls of two steps each, as the script's checkpoints split a run
        for _ in range(2):
            factors.append(trainer.lr_factor())
            trainer.step()
    assert factors[:4] == [1.0] * 4
    assert factors[4:] == pytest.approx([1.0, 0.75, 0.5, 0.25])
    assert trainer.lr_factor() == 0.0
    # the rate is what the optimiser used, and the history logs it
    stats = trainer.train(steps=2, log=lambda _: None, log_every=1)
    assert stats["history"][-1]["lr"] == 0.0
    # time-limited runs decay with the training seconds spent
    trainer.set_horizon(seconds=100.0)
    trainer.trained_seconds += 75.0
    assert trainer.lr_factor() == pytest.approx(0.5)
    flat = TeacherTrainer(prior, cfg.model_copy(update={"cooldown": 0.0}), trainer.bank, seed=0)
    flat.set_horizon(steps=2)
    flat.step()
    flat.step()
    assert flat.lr_factor() == 1.0


def test_int8_packing_round_trips_the_checkpoint(teachers, tmp_path):
    src = teachers["zero123plus"]
    packed = pack_teacher(src, tmp_path / "t.safetensors")
    out = unpack_teacher(packed, tmp_path / "unpacked")
    a, b = load_teacher(src), load_teacher(out)
    for (k, p), (_, q) in zip(
        a.unet.state_dict().items(), b.unet.state_dict().items(), strict=True
    ):
        err = (p.float() - q.float()).abs().max()
        assert err <= p.float().abs().max() / 127 + 1e-3, k
    assert (out / "model_index.json").read_text() == (src / "model_index.json").read_text()
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(FileFormatError):
        unpack_teacher(tmp_path / "bad.safetensors", tmp_path / "x")


def test_packed_teacher_loads_like_its_directory(teachers, tmp_path, monkeypatch):
    from gs_priors.model_dir import resolve_model_dir
    from gs_priors.teachers import packing
    from gs_priors.zero123plus import COMPONENTS, Zero123PlusGuidance

    monkeypatch.setenv(packing.CACHE_ENV, str(tmp_path / "cache"))
    packed = pack_teacher(teachers["zero123plus"], tmp_path / "zero123plus.safetensors")
    calls = []
    real = packing.unpack_teacher
    monkeypatch.setattr(packing, "unpack_teacher", lambda *a: calls.append(a) or real(*a))
    reference = load_teacher(unpack_teacher(packed, tmp_path / "by-hand"))
    from_file = load_teacher(packed)
    direct = Zero123PlusGuidance.from_pretrained(packed, view_size=reference.view_size)
    for prior in (from_file, direct):
        for p, q in zip(reference.unet.parameters(), prior.unet.parameters(), strict=True):
            torch.testing.assert_close(p, q)
    # Unpacked once into the cache, whole, under the file's hash; found again after that.
    assert len(calls) == 1
    first = resolve_model_dir(packed, COMPONENTS)
    assert first.parent == tmp_path / "cache" and first.name.startswith("zero123plus-")
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]
    # A changed file is a new entry, not the stale one.
    packed2 = pack_teacher(
        teachers["zero123plus"], tmp_path / "zero123plus.safetensors", int8=False
    )
    assert resolve_model_dir(packed2, COMPONENTS) != first and len(calls) == 2
    # A file that is not a packed teacher: one error naming it.
    bad = tmp_path / "other.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(FileFormatError, match="other.safetensors.*packed teacher"):
        resolve_model_dir(bad, COMPONENTS)


def test_teacher_digest_names_the_content_not_the_path(teachers, tmp_path):
    import hashlib

    from gs_priors.teachers.packing import teacher_digest

    src = teachers["zero123plus"]
    packed = pack_teacher(src, tmp_path / "t.safetensors")
    assert teacher_digest(packed) == hashlib.sha256(packed.read_bytes()).hexdigest()
    copy = tmp_path / "elsewhere" / "t.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(packed.read_bytes())
    assert teacher_digest(copy) == teacher_digest(packed)
    # The same name with other weights (a pack rebuilt after a loss) is another teacher.
    pack_teacher(src, tmp_path / "t.safetensors", int8=False)
    assert teacher_digest(packed) != teacher_digest(copy)
    # A directory: every file's path and content; a copy agrees, one changed file does not.
    tree = tmp_path / "tree"
    shutil.copytree(src, tree)
    assert teacher_digest(tree) == teacher_digest(src)
    (tree / "model_index.json").write_text((tree / "model_index.json").read_text() + " ")
    assert teacher_digest(tree) != teacher_digest(src)
    with pytest.raises(FileFormatError, match="no such teacher"):
        teacher_digest(tmp_path / "missing")


@pytest.mark.parametrize("name", ["zero123plus", "imagedream"])
def test_multiview_samples_score_like_a_predictor(name, teachers, datasets):
    prior = load_teacher(teachers[name])
    bg = (127 / 255,) * 3 if name == "zero123plus" else (1.0, 1.0, 1.0)
    pairs = view_pairs(datasets[name], resolution=16, background=bg, mirrors=False)
    if name == "imagedream":
        pairs = [p for p in pairs if round(abs(p.d_azimuth)) in (90, 180)]
    lines = []
    samples = multiview_samples(
        prior, name, pairs, seeds=(0, 1), guidance_scale=2.0, steps=2, progress=lines.append
    )
    assert set(samples) == {0, 1} and samples[0].shape == (len(pairs), 3, 16, 16)
    # One progress line per sampler call: each seed of each chunk of inputs.
    assert len(lines) == 2 and lines[1].startswith(f"{name} guidance 2: seed 1, inputs 1-")
    report = score_novel_views(None, pairs, samples=samples, background=bg)
    assert report.seeds == [0, 1] and report.pairs == len(pairs)
    with pytest.raises(ValidationError):
        score_novel_views(None, pairs)
    bad = {0: samples[0][:1]}
    with pytest.raises(ValidationError):
        score_novel_views(None, pairs, samples=bad)


@pytest.mark.parametrize("name", ["zero123", "zero123plus", "imagedream"])
def test_the_evaluation_samples_with_the_sampler_it_is_given(name, teachers, datasets):
    """``sampler`` reaches every teacher's sampling: ancestral DDPM and Euler ancestral draw
    other samples than DDIM from the same seed (the default stays DDIM, the checks' protocol)."""
    from gs_priors.teachers.evaluation import zero123_predictor

    prior = load_teacher(teachers[name])
    bg = (127 / 255,) * 3 if name == "zero123plus" else (1.0, 1.0, 1.0)
    pairs = view_pairs(datasets[name], resolution=16, background=bg, mirrors=False)
    if name == "imagedream":
        pairs = [p for p in pairs if round(abs(p.d_azimuth)) in (90, 180)]
    pairs = pairs[:2]

    def draw(**sampler):
        torch.manual_seed(0)  # Zero123++ noises its reference with the global generator
        if name == "zero123":
            predict = zero123_predictor(prior, 2.0, steps=3, **sampler)
            p = pairs[0]
            angles = torch.tensor([p.d_elevation]), torch.tensor([p.d_azimuth])
            return predict(p.input_rgba[None], *angles, seed=0)
        return multiview_samples(prior, name, pairs, (0,), 2.0, steps=3, **sampler)[0]

    ddim, default, ddpm = draw(sampler="ddim"), draw(), draw(sampler="ddpm")
    assert torch.equal(ddim, default)
    assert (ddim - ddpm).abs().max() > 1e-3
    euler_a = draw(sampler="euler_a")  # Zero123++'s shipped scheduler
    assert (euler_a - ddim).abs().max() > 1e-3
    assert not torch.equal(euler_a, ddpm)  # close: both ancestral, on one seed's noise draws
    # guidance_rescale reaches it too (0, the default, is the checks' protocol)
    assert torch.equal(draw(guidance_rescale=0.0), ddim)
    if name != "imagedream":  # the untrained tiny ImageDream's U-Net outputs zeros (its
        # zero-initialised conv_out), so both branches agree and there is nothing to rescale
        assert (draw(guidance_rescale=1.0) - ddim).abs().max() > 1e-4


def test_sheet_pairs_take_whole_inputs_spread_through_the_list():
    from gs_priors.teachers.sheet import sheet_pairs

    def pair(obj, az_in, az_out):
        return ViewPair(
            obj, torch.zeros(4, 2, 2), torch.zeros(3, 2, 2), (az_in, 0.0), (az_out, 0.0)
        )

    pairs = [pair(f"o{k}", 0.0, d) for k in range(5) for d in (90.0, 180.0)]
    chosen = sheet_pairs(pairs, 3)
    assert [(p.object_id, p.target_angles[0]) for p in chosen] == [
        ("o0", 90.0), ("o0", 180.0), ("o2", 90.0), ("o2", 180.0), ("o4", 90.0), ("o4", 180.0),
    ]  # fmt: skip
    assert len(sheet_pairs(pairs, 9)) == 10  # more inputs asked than there are: all of them
    # at most `views` of an input's pairs, spread through them (Zero123's inputs have 37)
    many = [pair(f"o{k}", 0.0, float(d)) for k in range(2) for d in range(10, 100, 10)]
    few = sheet_pairs(many, 1, views=3)
    assert [(p.object_id, p.target_angles[0]) for p in few] == [
        ("o0", 10.0), ("o0", 50.0), ("o0", 90.0),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="inputs"):
        sheet_pairs(pairs, 0)


@pytest.mark.parametrize("name", ["zero123", "zero123plus"])
def test_the_sample_sheet_shows_truths_above_each_scales_samples(name, teachers, datasets):
    """Rows: each input with its true views, then seed 0's samples per scale, the samples the
    evaluation draws (same sampler, seed and batching)."""
    from gs_priors.teachers.sheet import sample_sheet, sheet_pairs

    prior = load_teacher(teachers[name])
    bg = (127 / 255,) * 3 if name == "zero123plus" else (1.0, 1.0, 1.0)
    pairs = view_pairs(datasets[name], resolution=16, background=bg, mirrors=False)
    chosen = sheet_pairs(pairs, 2)
    groups = {}
    for p in chosen:
        groups.setdefault((p.object_id, p.input_angles), []).append(p)
    assert len(groups) == 2
    tile, pad = 16, 2
    torch.manual_seed(0)
    sheet = sample_sheet(prior, name, pairs, [1.0, 3.0], inputs=2, steps=2, tile=tile,
                         background=bg)  # fmt: skip
    ncols = 1 + max(len(g) for g in groups.values())
    assert sheet.shape == (2 * 3 * (tile + pad) + pad, ncols * (tile + pad) + pad, 3)

    def cell(r, c):
        y, x = pad + r * (tile + pad), pad + c * (tile + pad)
        return sheet[y : y + tile, x : x + tile].astype(np.float32) / 255

    first = next(iter(groups.values()))
    truth = first[0].target_rgb.permute(1, 2, 0).numpy()
    assert np.abs(cell(0, 1)[13:, :] - truth[13:, :]).max() < 2 / 255  # below the label
    assert np.abs(cell(1, 1) - cell(2, 1)).max() > 1 / 255  # guidance 1 and 3 differ
    assert np.abs(cell(1, 1) - truth).max() > 1 / 255  # a sample, not the truth again
    # guidance_rescale reaches the sheet's samples: guidance 3 changes, guidance 1 cannot
    torch.manual_seed(0)
    rescaled = sample_sheet(prior, name, pairs, [1.0, 3.0], inputs=2, steps=2, tile=tile,
                            background=bg, guidance_rescale=1.0)  # fmt: skip
    assert np.array_equal(rescaled[: 2 * (tile + pad)], sheet[: 2 * (tile + pad)])
    assert np.abs(rescaled.astype(np.float32) - sheet).max() > 1


def test_fp32_precision_turns_tf32_off_and_restores_it():
    """``precision="fp32"`` samples without TF32 (a GPU's default for convolutions) and puts the
    flags back afterwards; an unknown precision is refused."""
    from gs_priors.teachers.evaluation import _precision

    prior = SimpleNamespace(device=torch.device("cpu"))
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with _precision(prior, "fp32"):
            assert not torch.backends.cudnn.allow_tf32
            assert not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 == before[0]
        assert torch.backends.cuda.matmul.allow_tf32
        with _precision(prior, "bf16"):
            assert torch.backends.cuda.matmul.allow_tf32  # bf16 leaves the flags alone
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before[1]
    with pytest.raises(ValueError, match="precision"), _precision(prior, "fp16"):
        pass


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["zero123", "zero123plus"])
def test_the_evaluation_samples_in_the_precision_it_is_given(name, teachers, datasets):
    """On a GPU, bf16 autocast and fp32 draw (slightly) different samples from one seed, and
    fp32 is deterministic."""
    from gs_priors.teachers.evaluation import zero123_predictor

    prior = load_teacher(teachers[name], device="cuda")
    bg = (127 / 255,) * 3 if name == "zero123plus" else (1.0, 1.0, 1.0)
    pairs = view_pairs(datasets[name], resolution=16, background=bg, mirrors=False)[:2]

    def draw(precision):
        torch.manual_seed(0)
        if name == "zero123":
            predict = zero123_predictor(prior, 4.0, steps=3, precision=precision)
            p = pairs[0]
            angles = torch.tensor([p.d_elevation]), torch.tensor([p.d_azimuth])
            return predict(p.input_rgba[None], *angles, seed=0)
        return multiview_samples(prior, name, pairs, (0,), 4.0, steps=3, precision=precision)[0]

    fp32, again, bf16 = draw("fp32"), draw("fp32"), draw("bf16")
    assert torch.allclose(fp32, again, atol=1e-5)
    assert (fp32 - bf16).abs().max() > 1e-5


def test_usefulness_checks_follow_the_criteria():
    from gs_core.evaluation.novel_views import MethodScores, NovelViewReport

    def report(teacher_far, pose, diversity):
        m = {
            "teacher": MethodScores(20, 0.8, teacher_far, 0.8),
            "copy": MethodScores(19, 0.8, 15.0, 0.8),
            "mirror": MethodScores(19, 0.8, 16.0, 0.8),
        }
        return NovelViewReport(m, pose, 10, diversity, 20, 10, [0, 1])

    ok = usefulness({1.0: report(17.5, 0.95, 5.0), 3.0: report(18.5, 0.95, 5.0)}, 3.0)
    assert all(c["passed"] for c in ok.values())
    bad = usefulness({1.0: report(18.9, 0.5, 0.1), 3.0: report(17.0, 0.5, 0.1)}, 3.0)
    assert not any(c["passed"] for c in bad.values())
    # The pose check reads the far pairs when there are any (the issue's +90 degree sample).
    far = report(18.5, 0.5, 5.0)
    far.pose_accuracy_far, far.pose_pairs_far = 0.95, 4
    checks = usefulness({1.0: report(17.5, 0.5, 5.0), 3.0: far}, 3.0)
    assert checks["pose_accuracy"]["passed"] and checks["pose_accuracy"]["value"] == 0.95
    far.pose_accuracy_far = 0.6
    assert not usefulness({1.0: far, 3.0: far}, 3.0)["pose_accuracy"]["passed"]
    # ... and the +-90 degree pairs when there are any: the words exactly, from the
    # official scale's own pairs or from a separate report on quarter turns (Zero123)
    far.pose_accuracy_quarter, far.pose_pairs_quarter = 0.92, 2
    assert usefulness({1.0: far, 3.0: far}, 3.0)["pose_accuracy"]["value"] == 0.92
    quarter = report(18.5, 0.5, 5.0)
    quarter.pose_accuracy_quarter, quarter.pose_pairs_quarter = 0.85, 8
    checks = usefulness({1.0: far, 3.0: far}, 3.0, quarter)
    assert checks["pose_accuracy"]["value"] == 0.85 and not checks["pose_accuracy"]["passed"]


def test_the_gpu_script_runs_end_to_end_on_a_cpu(tmp_path):

    def run(run_name: str, *extra: str) -> dict:
        """The script on the tiny preset into WORK ``w<run_name>`` / OUT ``o<run_name>``."""
        w, o = tmp_path / f"w{run_name}", tmp_path / f"o{run_name}"
        cmd = [
            sys.executable, str(SCRIPT), "--work", str(w), "--out", str(o), "--preset", "tiny",
            "--gpus", "cpu", "--steps", "2", "--vae-steps", "2", "--seeds", "2",
            "--eval-steps", "1", "--objects", "2", "--set", "loss_weighting=v", *extra,
        ]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        return json.loads((o / "results.json").read_text())

    results = run("")
    assert set(results["teachers"]) == set(NAMES)
    for name in NAMES:
        t = results["teachers"][name]
        assert set(t["checks"]) == {
            "far_margin_db",
            "paper_scale_vs_1_far_db",
            "pose_accuracy",
            "seed_diversity_far",
        }
        assert (tmp_path / "o" / f"{name}.safetensors").stat().st_size > 0
        # --sheet's default: up to 4 held-out inputs, each a row of truths and one per scale
        sheet = np.asarray(Image.open(tmp_path / "o" / f"{name}-samples.png"))
        rows, rest = divmod(sheet.shape[0] - 2, 96 + 2)
        assert rest == 0 and rows in (3, 6, 9, 12), rows
        assert t["train"]["resumed_from"] is None
        assert t["config"]["loss_weighting"] == "v"
        assert t["fp16_at_paper_scale"]["methods"]["teacher"]["psnr"] > 0
        # Zero123's pose check on its own +-90 degree pairs: 2 objects x 1 input x 2 turns
        if name == "zero123":
            assert t["quarter_turn"]["pairs"] == 4 and t["quarter_turn"]["far_pairs"] == 4
            assert t["quarter_turn"]["pose_pairs_quarter"] <= 4
        else:
            assert t["quarter_turn"] is None
        if name != "zero123plus":
            assert set(t["camera_gap_held_out"]) == {"500", "800", "950"}
            assert t["train"]["camera_gap"][-1]["step"] == 2
        # Memorisation: the condition against the null one on training and held-out objects
        assert set(t["condition_use"]["least_gain_db"]) == {"train", "unseen"}
        assert set(t["condition_use"]["splits"]["unseen"]) == {
            "50",
            "150",
            "300",
            "500",
            "700",
            "900",
        }
        # What guidance does: scale 1 and the official scale on held-out draws, against the truth
        ge = t["guidance_effect"]
        assert [e["scale"] for e in ge["entries"]] == [1.0, float(PAPER_GUIDANCE[name])]
        assert ge["truth"]["chroma"] > 0 and all(e["latent_mse"] > 0 for e in ge["entries"])
    # Continuing from the packed teachers brought back: same VAE, no fresh initialisation.
    resume = ["--resume", str(tmp_path / "o")]
    again = run("2", *resume, "--priors", "zero123", "--no-fp16-check")
    assert "resumed_from" in again["vae"]
    assert set(again["teachers"]) == {"zero123"}  # --priors: only the teacher brought back
    assert again["teachers"]["zero123"]["train"]["resumed_from"].endswith("zero123.safetensors")
    assert again["teachers"]["zero123"]["fp16_at_paper_scale"] is None
    assert again["teachers"]["zero123"]["checks"]  # the int8 evaluation still ran
    assert not (tmp_path / "w2" / "data" / "imagedream-train").exists()
    # --eval-only: the brought-back teacher evaluated as it is (same file, no step, no train data).
    ev = run(
        "3", *resume, "--priors", "imagedream", "--eval-only", "--guidance", "2.5",
        "--eval-pairs", "2", "--eval-sampler", "ddpm", "--eval-precision", "fp32",
        "--guidance-rescale", "0.7",
    )  # fmt: skip
    ev = ev["teachers"]["imagedream"]
    sheet = np.asarray(Image.open(tmp_path / "o3" / "imagedream-samples.png"))
    rows, rest = divmod(sheet.shape[0] - 2, 96 + 2)
    assert rest == 0 and rows in (4, 8), rows  # per input: its truths + the three scales
    assert ev["eval_sampler"] == "ddpm" and again["teachers"]["zero123"]["eval_sampler"] == "ddim"
    assert ev["eval_precision"] == "fp32" and ev["eval_guidance_rescale"] == 0.7
    assert again["teachers"]["zero123"]["eval_guidance_rescale"] == 0.0
    assert again["teachers"]["zero123"]["eval_precision"] == "bf16"
    assert again["teachers"]["zero123"]["reports"]["1.0"]["pairs"] > 2
    assert ev["reports"]["1.0"]["pairs"] == 2  # --eval-pairs: an even subset
    assert ev["train"]["steps"] == 0 and ev["checks"] and ev["fp16_at_paper_scale"] is None
    assert set(ev["condition_use"]["least_gain_db"]) == {"unseen"}  # no training objects here
    assert set(ev["reports"]) == {"1.0", "2.5", "5.0"}  # --guidance adds a scale to report
    assert (tmp_path / "o3" / "imagedream.safetensors").read_bytes() == (
        tmp_path / "o" / "imagedream.safetensors"
    ).read_bytes()
    assert not (tmp_path / "w3" / "data" / "imagedream-train").exists()
    assert "pose_far_by_gap" in ev["reports"]["1.0"]
    assert "pose_far_by_turn" in ev["reports"]["1.0"]
    # --no-eval: trained and packed, no check run (a first stage whose second is evaluated).
    bare = run("7", *resume, "--priors", "zero123", "--no-eval")["teachers"]["zero123"]
    assert bare["evaluation"] == "skipped (--no-eval)" and bare["train"]["steps"] == 2
    assert not {"checks", "reports", "condition_use", "guidance_effect"} & set(bare)
    assert (tmp_path / "o7" / "zero123.safetensors").stat().st_size == bare["packed_bytes"]
    # A new teacher beside another's pack: trained from scratch on that pack's VAE.
    other = tmp_path / "only-zero123"
    other.mkdir()
    shutil.copy(tmp_path / "o" / "zero123.safetensors", other)
    new = run("4", "--resume", str(other), "--priors", "imagedream", "--no-fp16-check")
    assert new["vae"]["resumed_from"].endswith("zero123.safetensors")
    assert new["teachers"]["imagedream"]["train"]["resumed_from"] is None
    assert new["teachers"]["imagedream"]["train"]["warm_start"] is None
    # --init-from: a new Zero123++ starts from the Zero123 pack's U-Net and CLIP tower.
    pack = str(other / "zero123.safetensors")
    warm = run("5", "--resume", str(other), "--init-from", pack, "--priors", "zero123plus",
               "--no-fp16-check")  # fmt: skip
    ws = warm["teachers"]["zero123plus"]["train"]["warm_start"]
    assert ws["from"] == pack
    assert ws["modules"]["unet"]["cut"] == ["conv_in.weight"]
    assert ws["modules"]["unet"]["kept"] == 0 and ws["modules"]["vision_encoder"]["kept"] == 0
    # ... and refuses, before any data, when no teacher asked for can take the weights.
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "w6"), "--out", str(tmp_path / "o6"),
         "--preset", "tiny", "--gpus", "cpu", "--init-from", pack, "--priors", "imagedream"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "--init-from: no teacher to train" in bad.stderr
    assert not (tmp_path / "w6").exists()


def test_warm_start_copies_zero123_into_a_new_zero123plus(teachers, tmp_path):
    from safetensors.torch import load_file

    from gs_priors.teachers.warm_start import can_warm_start, teacher_prior, warm_start

    target = shutil.copytree(teachers["zero123plus"], tmp_path / "target")
    packed = pack_teacher(teachers["zero123"], tmp_path / "zero123.safetensors")
    assert teacher_prior(packed) == "zero123" and teacher_prior(target) == "zero123plus"
    assert can_warm_start("zero123plus", "zero123") and not can_warm_start("zero123", "zero123plus")
    before = load_file(str(target / "unet" / "diffusion_pytorch_model.safetensors"))
    report = warm_start(target, teachers["zero123"])
    assert report["unet"]["cut"] == ["conv_in.weight"] and report["unet"]["kept"] == []
    ref = load_file(str(teachers["zero123"] / "image_encoder" / "model.safetensors"))
    assert report["vision_encoder"] == {
        "from": "image_encoder", "copied": len(ref), "cut": [], "widened": [], "kept": [],
        "unused": 0,
    }  # fmt: skip
    assert report["unet"]["unused"] == 0
    src = load_file(str(teachers["zero123"] / "unet" / "diffusion_pytorch_model.safetensors"))
    got = load_file(str(target / "unet" / "diffusion_pytorch_model.safetensors"))
    assert set(got) == set(before) and report["unet"]["copied"] == len(got) - 1
    # Zero123 reads [noisy latent, input latent]: Zero123++'s 4 channels are the first four.
    assert src["conv_in.weight"].shape[1] == 8 and got["conv_in.weight"].shape[1] == 4
    assert torch.equal(got["conv_in.weight"], src["conv_in.weight"][:, :4])
    assert all(torch.equal(got[k], src[k]) for k in got if k != "conv_in.weight")
    assert not torch.equal(got["conv_out.weight"], before["conv_out.weight"])
    enc = load_file(str(target / "vision_encoder" / "model.safetensors"))
    assert all(torch.equal(enc[k], ref[k]) for k in enc)
    # The packed source gives the same weights (int8-rounded), and the teacher still loads.
    again = shutil.copytree(teachers["zero123plus"], tmp_path / "again")
    assert warm_start(again, packed)["unet"]["copied"] == report["unet"]["copied"]
    assert load_teacher(again).unet.conv_in.weight.shape[1] == 4
    with pytest.raises(ValidationError, match="warm start"):
        warm_start(shutil.copytree(teachers["imagedream"], tmp_path / "id"), packed)
    with pytest.raises(FileFormatError, match="not a procedural teacher"):
        warm_start(target, tmp_path)
    # A source of another size: refused, not a silent partial start.
    bigger = TeacherConfig.preset("tiny-zero123plus").with_overrides(["unet_channels=[16,48]"])
    other = write_teacher(bigger, tmp_path / "bigger", teachers["zero123"] / "vae")
    with pytest.raises(ValidationError, match="tensors of other shapes"):
        warm_start(other, packed)


def test_warm_start_copies_imagedream_into_a_new_zero123plus(teachers, tmp_path):
    # ImageDream's U-Net in the original layout, renamed (gs_priors.teachers.ldm_unet_keys);
    # its camera MLP, image-prompt resampler and image-prompt keys / values have no place.
    from safetensors.torch import load_file

    from gs_priors.teachers.ldm_unet_keys import diffusers_key
    from gs_priors.teachers.warm_start import can_warm_start, warm_start

    assert can_warm_start("zero123plus", "imagedream")
    assert not can_warm_start("imagedream", "zero123plus")
    target = shutil.copytree(teachers["zero123plus"], tmp_path / "target")
    report = warm_start(target, teachers["imagedream"])
    src = load_file(str(teachers["imagedream"] / "unet" / "diffusion_pytorch_model.safetensors"))
    got = load_file(str(target / "unet" / "diffusion_pytorch_model.safetensors"))
    dropped = [k for k in src if diffusers_key(k, 1) is None]
    assert report["unet"] == {
        "from": "unet", "copied": len(got), "cut": [], "widened": [], "kept": [],
        "unused": len(dropped),
    }  # fmt: skip
    assert dropped and all(
        "_ip." in k or k.startswith(("camera_embed", "image_embed")) for k in dropped
    )
    assert torch.equal(got["conv_in.weight"], src["input_blocks.0.0.weight"])
    assert torch.equal(
        got["up_blocks.0.resnets.1.conv2.weight"], src["output_blocks.1.0.out_layers.3.weight"]
    )
    # The CLIP tower: ImageDream's has no projection, which stays as initialised.
    ref = load_file(str(teachers["imagedream"] / "image_encoder" / "model.safetensors"))
    assert report["vision_encoder"]["kept"] == ["visual_projection.weight"]
    assert report["vision_encoder"]["copied"] == len(ref)
    # The packed pack gives the same start, and the teacher loads and runs.
    packed = pack_teacher(teachers["imagedream"], tmp_path / "imagedream.safetensors")
    again = shutil.copytree(teachers["zero123plus"], tmp_path / "again")
    assert warm_start(again, packed)["unet"]["copied"] == len(got)
    prior = load_teacher(again)
    x = torch.randn(1, 4, 8, 8)
    out = prior.unet(x, torch.tensor([500]), encoder_hidden_states=torch.randn(1, 77, 16)).sample
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_spread_subset_keeps_evenly_spaced_pairs():
    from gs_priors.teachers.evaluation import spread_subset

    items = list(range(10))
    assert spread_subset(items, None) == items and spread_subset(items, 20) == items
    assert spread_subset(items, 4) == [0, 3, 6, 9]
    assert spread_subset(items, 1) == [0]
    with pytest.raises(ValueError, match="at least 1"):
        spread_subset(items, 0)


@pytest.fixture(scope="module")
def script_module():
    """The GPU script imported as a module (its helpers, without running it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_procedural_teachers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_gpu_named_per_teacher_trains_all_three_at_once(script_module):
    module = script_module
    for devices, chains in ((1, 1), (2, 2), (3, 3)):
        got = module.teacher_chains(devices)
        assert len(got) == chains
        assert sorted(n for chain in got for n in chain) == sorted(NAMES)
    assert module.teacher_chains(3, ["zero123"]) == [["zero123"]]
    # Two teachers on two entries (two GPUs, or one named twice) train side by side, not one
    # after the other on the first entry while the second idles.
    assert module.teacher_chains(2, ["zero123plus", "imagedream"]) == [
        ["imagedream"],
        ["zero123plus"],
    ]
    assert module.teacher_chains(2) == [["zero123"], ["imagedream", "zero123plus"]]
    assert module.teacher_chains(1, ["zero123plus", "zero123"]) == [["zero123", "zero123plus"]]


def test_multiview_evaluation_draws_four_sets_per_object_keeping_the_first(script_module):
    """ImageDream's pose check needs more than one input per held-out object (48 pairs gave a
    5-point standard error); the added sets leave the first, and so earlier numbers, as they were."""
    import numpy as np

    from gs_core.procedural.generator import camera_angles

    module = script_module
    for name, per in (("imagedream", 24), ("zero123plus", 7)):
        ev = module.eval_config("procedural", name, 128)
        assert ev.views == 4 * per and ev.asymmetric
        one = ev.model_copy(update={"views": per})
        for index in (0, 5):
            az4, el4, _ = camera_angles(ev, index)
            az1, el1, _ = camera_angles(one, index)
            assert np.allclose(az4[:per], az1) and np.allclose(el4[:per], el1)
            # the other sets are new inputs, not copies of the first
            assert not np.allclose(az4[per : 2 * per], az1)
    assert module.eval_config("tiny", "imagedream", 32).views == 24
    assert module.eval_config("procedural", "zero123", 128).camera_layout == "protocol"


def test_set_overrides_every_teacher_or_the_one_named(script_module):
    import argparse

    module = script_module
    args = argparse.Namespace(
        preset="tiny", set=["lr=0.002", "zero123:cooldown=1", "imagedream:cooldown=0.25"]
    )
    z, i, p = (module.teacher_config(args, n) for n in ("zero123", "imagedream", "zero123plus"))
    assert z.lr == i.lr == p.lr == 0.002
    assert (z.cooldown, i.cooldown, p.cooldown) == (1.0, 0.25, 0.0)
    script_run = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", "w", "--out", "o", "--set", "zero12:cooldown=1"],
        capture_output=True,
        text=True,
    )
    assert script_run.returncode == 2 and "unknown prior 'zero12'" in script_run.stderr


def test_compact_imagedream_fits_the_repository_and_every_prior_has_a_compact_preset(
    script_module, tmp_path
):
    """The compact ImageDream is the procedural one shrunk to pack under 18 MB (the 19.3 MB of room beside
    AGG's bundle in the 32 MiB weight budget), with the procedural world's data and protocol;
    Zero123 and Zero123++ have its widths, so that they warm-start from it."""
    import argparse

    from gs_priors.teachers.packing import pack_teacher

    module = script_module
    cfg = module.teacher_config(argparse.Namespace(preset="compact", set=[]), "imagedream")
    assert cfg == TeacherConfig.preset("compact-imagedream")
    assert cfg.unet_channels != TeacherConfig.preset("imagedream").unet_channels
    assert module.DATA["compact"] == module.DATA["procedural"]
    vae = build_vae(cfg)
    vae.save_pretrained(tmp_path / "vae")
    directory = write_teacher(cfg, tmp_path / "t", tmp_path / "vae")
    size = pack_teacher(directory, tmp_path / "imagedream.safetensors").stat().st_size
    assert 10e6 < size < 18e6
    widths = ("unet_channels", "unet_layers", "groups", "head_channels", "context_dim")
    for name in module.NAMES:
        other = module.teacher_config(argparse.Namespace(preset="compact", set=[]), name)
        assert other == TeacherConfig.preset(f"compact-{name}") and other.prior == name
        assert [getattr(other, f) for f in widths] == [getattr(cfg, f) for f in widths], name
    # Zero123's official condition dropout stays (5% whole, 5% CLIP only, 5% image only).
    zero123 = TeacherConfig.preset("compact-zero123")
    assert (zero123.condition_dropout, zero123.reference_dropout) == (0.05, 0.05)


REPOSITORY_TEACHER = Path(__file__).parents[1] / "teachers" / "imagedream.safetensors"
# The twenty-first run's pack (the twentieth continued; all four checks, gs-priors README);
# DD3G's tables were measured with the twentieth (sha256 8743ac1a..., in git history).
REPOSITORY_TEACHER_SHA256 = "779af09f688b8f621c71ea49245ddf4002c8165772fe437205d7283fb84d9182"


def test_the_repository_imagedream_teacher_loads_through_the_real_class(tmp_path, monkeypatch):
    import hashlib

    from gs_priors.imagedream import ImageDreamGuidance
    from gs_priors.teachers.packing import CACHE_ENV, unpacked_teacher

    digest = hashlib.sha256(REPOSITORY_TEACHER.read_bytes()).hexdigest()
    assert digest == REPOSITORY_TEACHER_SHA256, (
        f"{REPOSITORY_TEACHER} changed: measure it and update the README and this hash"
    )
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    cfg = TeacherConfig.model_validate_json(
        (unpacked_teacher(REPOSITORY_TEACHER) / "teacher_config.json").read_text()
    )
    compact = TeacherConfig.preset("compact-imagedream")
    for field in ("prior", "unet_channels", "groups", "head_channels", "context_dim"):
        assert getattr(cfg, field) == getattr(compact, field), field
    prior = load_teacher(REPOSITORY_TEACHER)
    assert isinstance(prior, ImageDreamGuidance)
    widths = {m.weight.shape[0] for m in prior.unet.modules() if isinstance(m, torch.nn.GroupNorm)}
    assert max(widths) == 2 * 144  # the widest: the up path's 144 channels and their skip


def test_compact_zero123plus_warm_starts_from_the_repository_imagedream(tmp_path, monkeypatch):
    """Every U-Net tensor of the tracked compact ImageDream has a place in the compact
    Zero123++ (renamed from the original layout), so GECO's teacher starts from it."""
    from gs_priors.teachers.packing import CACHE_ENV
    from gs_priors.teachers.warm_start import warm_start

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cfg = TeacherConfig.preset("compact-zero123plus")
    build_vae(cfg).save_pretrained(tmp_path / "vae")
    target = write_teacher(cfg, tmp_path / "t", tmp_path / "vae")
    report = warm_start(target, REPOSITORY_TEACHER)
    assert report["unet"]["copied"] > 300 and not report["unet"]["cut"]
    assert not report["unet"]["kept"]  # no U-Net tensor left at its random init
    assert report["vision_encoder"]["kept"] == ["visual_projection.weight"]
    prior = load_teacher(target)
    x = torch.randn(1, 4, 16, 16)
    context = torch.randn(1, 8, cfg.context_dim)
    out = prior.unet(x, torch.tensor([500]), encoder_hidden_states=context).sample
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_compact_zero123_warm_starts_from_the_repository_imagedream(tmp_path, monkeypatch):
    """Every U-Net tensor of the tracked compact ImageDream has a place in the compact Zero123;
    the input latent's 4 extra ``conv_in`` channels start at zero, so at the start the input
    view's latent does not change the output (only the camera projection starts from scratch)."""
    from gs_priors.teachers.packing import CACHE_ENV
    from gs_priors.teachers.warm_start import can_warm_start, warm_start

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert can_warm_start("zero123", "imagedream")
    cfg = TeacherConfig.preset("compact-zero123")
    build_vae(cfg).save_pretrained(tmp_path / "vae")
    target = write_teacher(cfg, tmp_path / "t", tmp_path / "vae")
    report = warm_start(target, REPOSITORY_TEACHER)
    assert report["unet"]["widened"] == ["conv_in.weight"] and not report["unet"]["cut"]
    assert report["unet"]["copied"] > 300 and not report["unet"]["kept"]
    assert report["image_encoder"]["kept"] == ["visual_projection.weight"]
    prior = load_teacher(target)
    w = prior.unet.conv_in.weight
    assert w.shape[1] == 8 and w[:, 4:].abs().max() == 0 and w[:, :4].abs().max() > 0
    x = torch.randn(1, 4, 16, 16)
    context = torch.randn(1, 1, cfg.context_dim)
    outs = [
        prior.unet(torch.cat([x, z], 1), torch.tensor([500]), encoder_hidden_states=context).sample
        for z in (torch.zeros(1, 4, 16, 16), torch.randn(1, 4, 16, 16))
    ]
    torch.testing.assert_close(outs[0], outs[1])
    assert outs[0].shape == x.shape and torch.isfinite(outs[0]).all()


def test_v_loss_weight_turns_each_target_loss_into_the_v_loss():
    from gs_priors.teachers.training import v_loss_weight

    g = torch.Generator().manual_seed(0)
    ab = torch.tensor([0.9, 0.5, 0.04, 0.005])
    a, s = ab.sqrt().view(-1, 1), (1 - ab).sqrt().view(-1, 1)
    x0, eps = torch.randn(4, 16, generator=g), torch.randn(4, 16, generator=g)
    x0_hat = x0 + 0.1 * torch.randn(4, 16, generator=g)  # one prediction, three parametrisations
    xt = a * x0 + s * eps
    eps_hat = (xt - a * x0_hat) / s
    v_loss = ((a * eps_hat - s * x0_hat) - (a * eps - s * x0)).pow(2).mean(1)
    for kind, pred, target in (("epsilon", eps_hat, eps), ("sample", x0_hat, x0)):
        mse = (pred - target).pow(2).mean(1)
        torch.testing.assert_close(v_loss_weight(kind, ab) * mse, v_loss)
    torch.testing.assert_close(v_loss_weight("v_prediction", ab), torch.ones(4))


def test_v_weighting_reaches_the_training_loss(teachers, datasets):
    """The same batch, noise and timesteps: the "v" loss is the per-sample MSE weighted by
    1 / alpha_bar (Zero123 is an epsilon prior), not the plain mean."""
    from gs_priors.teachers.training import v_loss_weight

    prior = load_teacher(teachers["zero123"])
    bank = ViewBank.load(datasets["zero123"], 16)
    losses = {}
    for weighting in ("uniform", "v"):
        cfg = TeacherConfig.preset("tiny-zero123").model_copy(update={"loss_weighting": weighting})
        trainer = TeacherTrainer(prior, cfg, bank, seed=3)
        losses[weighting] = float(trainer.loss())
    # Recompute both from the same draws (the trainer's generator, seed 3).
    g = torch.Generator().manual_seed(3)
    batch = BATCHES["zero123"](bank, 4, g)
    x0, cond, null, _ = conditioned_batch(prior, "zero123", batch, trainer.cache)
    drop = torch.rand(4, generator=g) < cfg.condition_dropout
    cond = _mix(cond, null, drop)
    t = torch.randint(prior.num_train_timesteps, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    ab = prior.alphas_cumprod[t]
    xt = ab.sqrt().view(-1, 1, 1, 1) * x0 + (1 - ab).sqrt().view(-1, 1, 1, 1) * noise
    with torch.no_grad():
        err = (prior.model_output(xt, t, cond).float() - noise).pow(2).flatten(1).mean(1)
    assert losses["uniform"] == pytest.approx(float(err.mean()), rel=1e-4)
    assert losses["v"] == pytest.approx(
        float((v_loss_weight("epsilon", ab) * err).mean()), rel=1e-4
    )
    assert losses["v"] > 1.5 * losses["uniform"]


def _perturbed_teacher_and_batch(teacher: Path, dataset: Path, name: str, objects: int):
    """A tiny teacher with every U-Net weight moved off its init, and a batch of ``dataset``.
    ImageDream's U-Net starts with zero output layers (the LDM initialisation), so an untrained
    one ignores its every input."""
    prior = load_teacher(teacher)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in prior.unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    bank = ViewBank.load(dataset, 16)
    return prior, BATCHES[name](bank, objects, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", ["zero123", "imagedream"])
def test_camera_gap_compares_true_and_mirrored_cameras(name, teachers, datasets):
    from gs_priors.teachers import camera_gap

    prior, batch = _perturbed_teacher_and_batch(teachers[name], datasets[name], name, 4)
    gap = camera_gap(prior, name, batch, timesteps=(300, 900))
    assert set(gap) == {300, 900}
    for row in gap.values():
        assert row["true"] > 0 and row["mirrored"] > 0
        assert 0.0 <= row["true_better"] <= 1.0
    # A random camera path is not an absent one: mirrored cameras change the error.
    assert any(row["true"] != row["mirrored"] for row in gap.values())
    with pytest.raises(ValidationError, match="camera"):
        camera_gap(load_teacher(teachers["zero123plus"]), "zero123plus", batch)


@pytest.mark.parametrize("name", NAMES)
def test_condition_use_compares_the_condition_with_the_null_one(name, teachers, datasets):
    from gs_priors.teachers.condition_use import condition_use, condition_use_split

    prior, batch = _perturbed_teacher_and_batch(teachers[name], datasets[name], name, 3)
    rows = condition_use(prior, name, batch, timesteps=(100, 900))
    assert set(rows) == {100, 900}
    for row in rows.values():
        assert row["conditional"] > 0 and row["unconditional"] > 0
        assert min(abs(3 * row["condition_better"] - k) for k in range(4)) < 1e-5  # objects
    # A random condition path is not an absent one: the null condition changes the error.
    assert any(r["conditional"] != r["unconditional"] for r in rows.values())
    # The same seed draws the same noise: two splits of one batch score the same.
    split = condition_use_split(prior, name, {"a": batch, "b": batch}, timesteps=(100,))
    assert split["a"] == split["b"]


def test_lowest_gain_names_the_timestep_where_the_condition_helps_least():
    from gs_priors.teachers.condition_use import lowest_gain

    rows = {
        50: {"conditional": 0.004, "unconditional": 0.001, "condition_better": 0.0},
        900: {"conditional": 0.01, "unconditional": 0.1, "condition_better": 1.0},
    }
    t, gain = lowest_gain(rows)
    assert t == 50 and gain == pytest.approx(-6.0206, abs=1e-3)
    assert lowest_gain({900: rows[900]})[1] == pytest.approx(10.0)


def test_condition_use_script_scores_training_and_unseen_objects(tmp_path, teachers):
    script = Path(__file__).parents[1] / "scripts" / "condition_use.py"
    out = tmp_path / "cu.json"
    args = [sys.executable, str(script), "--pack", str(teachers["zero123plus"]), "--prior",
            "zero123plus", "--work", str(tmp_path / "w"), "--objects", "2", "--timesteps",
            "100,900", "--threads", "1", "--out", str(out)]  # fmt: skip
    run = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    assert "least gain from the condition" in run.stdout
    res = json.loads(out.read_text())
    assert res["prior"] == "zero123plus" and res["timesteps"] == [100, 900]
    assert set(res["splits"]) == {"train", "unseen"} == set(res["least_gain_db"])
    assert set(res["splits"]["unseen"]) == {"100", "900"}
    # Training objects and eval-hard objects are different objects: their errors differ.
    assert res["splits"]["train"] != res["splits"]["unseen"]
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    bad = subprocess.run(
        [*args[:-2], "--timesteps", "a,b"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--timesteps" in bad.stderr


@pytest.mark.parametrize("name", NAMES)
def test_guidance_effect_samples_each_entry_from_the_same_start(name, teachers, datasets):
    from gs_priors.teachers.guidance_effect import guidance_effect

    prior, batch = _perturbed_teacher_and_batch(teachers[name], datasets[name], name, 2)
    entries = [(1.0, None), (4.0, None), (4.0, (0, 10_000)), (4.0, (10_000, 20_000))]
    res = guidance_effect(prior, name, batch, entries, steps=3)
    one, four, four_all, four_none = res["entries"]
    assert res["truth"]["chroma"] > 0 and 0 < res["truth"]["luminance"] <= 1
    assert res["truth"]["vae_psnr"] > 0
    for e in res["entries"]:
        assert e["latent_mse"] > 0 and e["psnr"] > 0 and e["chroma"] >= 0
    # An interval holding every timestep is guidance everywhere; one holding none is scale 1.
    assert four_all["psnr"] == pytest.approx(four["psnr"], abs=1e-4)
    assert four_none["psnr"] == pytest.approx(one["psnr"], abs=1e-4)
    assert four["latent_mse"] != one["latent_mse"]  # the null branch is a different prediction
    again = guidance_effect(prior, name, batch, entries[:1], steps=3)
    assert again["entries"][0] == one  # seeded: the same draws


def test_guidance_entries_parse_with_one_clear_error():
    from gs_priors.teachers.guidance_effect import parse_entry

    assert parse_entry("4") == (4.0, None)
    assert parse_entry("4@500-1000") == (4.0, (500, 1000))
    for bad in ("x", "4@500", "4@900-100", "4@a-b"):
        with pytest.raises(ValidationError, match="guidance entry"):
            parse_entry(bad)


def test_guidance_effect_script_scores_held_out_objects(tmp_path, teachers):
    script = Path(__file__).parents[1] / "scripts" / "guidance_effect.py"
    out = tmp_path / "ge.json"
    args = [sys.executable, str(script), "--pack", str(teachers["zero123plus"]), "--prior",
            "zero123plus", "--work", str(tmp_path / "w"), "--objects", "2", "--entries",
            "1,3@0-500", "--steps", "2", "--threads", "1", "--out", str(out)]  # fmt: skip
    run = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    assert "guidance 3 at t in [0, 500)" in run.stdout
    res = json.loads(out.read_text())
    assert [e["scale"] for e in res["entries"]] == [1.0, 3.0]
    assert res["entries"][1]["interval"] == [0, 500] and res["prior"] == "zero123plus"
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    bad = subprocess.run(
        [*args[:-2], "--entries", "4@9-1"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "--entries" in bad.stderr


def test_camera_toy_script_learns_on_a_cpu(tmp_path, teachers):
    from gs_priors.teachers.packing import pack_teacher

    pack_teacher(teachers["zero123"], tmp_path / "zero123.safetensors")
    script = Path(__file__).parents[1] / "scripts" / "camera_toy.py"
    out = subprocess.run(
        [sys.executable, str(script), "--teacher", str(tmp_path / "zero123.safetensors"),
         "--work", str(tmp_path / "toy"), "--seconds", "4", "--probe-every", "2"],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert rows and rows[-1]["steps"] > rows[0]["steps"] >= 1
    assert set(rows[-1]["gap"]) == {"500", "800", "950"}


@pytest.mark.parametrize(
    ("source", "target", "conv_in"),
    [("zero123", "zero123plus", "cut"), ("imagedream", "zero123", "widened")],
)
def test_warm_start_toy_scores_both_starts_on_the_same_held_out_rows(
    tmp_path, teachers, source, target, conv_in
):
    script = Path(__file__).parents[1] / "scripts" / "warm_start_toy.py"
    out = tmp_path / "ws.json"
    subprocess.run(
        [sys.executable, str(script), "--source", str(teachers[source]), "--preset", "tiny",
         "--target", target, "--work", str(tmp_path / "w"), "--out", str(out), "--steps", "2",
         "--eval-every", "1", "--objects", "2", "--eval-objects", "2", "--batch", "2",
         "--threads", "1"],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    res = json.loads(out.read_text())
    assert res["target"] == target and res["config"]["prior"] == target
    assert res["warm_start"]["unet"][conv_in] == ["conv_in.weight"]
    assert res["warm_start"]["unet"]["kept"] == 0
    for run in ("scratch", "warm"):
        assert [r["step"] for r in res["curves"][run]] == [0, 1, 2]
        assert set(res["curves"][run][0]) == {
            "step", "100", "300", "500", "700", "900", "mean", "null_700", "null_900"
        }  # fmt: skip
    # Different starting weights score differently on the same rows.
    assert res["curves"]["warm"][0]["mean"] != res["curves"]["scratch"][0]["mean"]
    again = subprocess.run(
        [sys.executable, str(script), "--source", str(teachers["zero123"]), "--work",
         str(tmp_path / "w"), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert json.loads(out.read_text()) == res  # the earlier results are kept


@pytest.mark.parametrize("name", ["zero123", "zero123plus"])
def test_a_compiled_unet_trains_and_saves_the_checkpoint_layout(name, teachers, datasets, tmp_path):
    """``compile=True`` compiles in place: the saved keys are the checkpoint's, not a wrapper's.
    Zero123++ runs its U-Net at two shapes per step (reference pass, grid), forward and back."""
    import shutil

    from safetensors.torch import load_file

    directory = tmp_path / "t"
    shutil.copytree(teachers[name], directory)
    prior = load_teacher(directory)
    cfg = TeacherConfig.preset(f"tiny-{name}")
    trainer = TeacherTrainer(
        prior, cfg, ViewBank.load(datasets[name], 16), channels_last=False, compile=True
    )
    assert trainer.step() > 0 and trainer.step() > 0
    graphs = dict(torch._dynamo.utils.counters["stats"])
    with trainer.evaluating():  # a measurement between steps at another batch size runs eagerly
        assert all(not m.training for m in trainer.modules.values())
        if name == "zero123":
            from gs_priors.teachers import camera_gap
            from gs_priors.teachers.data import BATCHES

            batch = BATCHES[name](trainer.bank, 3, torch.Generator().manual_seed(1))
            camera_gap(prior, name, batch, timesteps=(500,))
    assert dict(torch._dynamo.utils.counters["stats"]) == graphs
    assert all(m.training for m in trainer.modules.values())
    before = set(load_file(next((directory / "unet").glob("*.safetensors"))))
    trainer.save(directory)
    assert set(load_file(next((directory / "unet").glob("*.safetensors")))) == before
    assert type(load_teacher(directory)).__name__ == type(prior).__name__


def test_zero123_dropout_draws_the_official_bands():
    """Official Zero123 (uncond = 0.05): CLIP only [0, .05), both [.05, .10), image only
    [.10, .15), nothing above."""
    from gs_priors.teachers.training import zero123_dropout

    r = torch.tensor([0.0, 0.049, 0.05, 0.099, 0.10, 0.149, 0.15, 0.9])
    both, parts = zero123_dropout(r, joint=0.05, part=0.05)
    assert both.tolist() == [False, False, True, True, False, False, False, False]
    assert parts["clip"].tolist() == [True, True, False, False, False, False, False, False]
    assert parts["image"].tolist() == [False, False, False, False, True, True, False, False]
    assert TeacherConfig.preset("zero123").reference_dropout == 0.05
    assert TeacherConfig.preset("zero123").condition_dropout == 0.05


def test_reference_dropout_keeps_the_camera_in_the_token(teachers, datasets, monkeypatch):
    """Rows with the image dropped keep a camera-dependent token; rows with the CLIP embedding
    dropped keep their latent and a token that is neither the full one nor the null."""
    prior = load_teacher(teachers["zero123"])
    bank = ViewBank.load(datasets["zero123"], 16)
    cfg = TeacherConfig.preset("tiny-zero123").model_copy(
        update={"condition_dropout": 0.0, "reference_dropout": 0.5, "batch_size": 64}
    )
    trainer = TeacherTrainer(prior, cfg, bank, seed=0)
    seen = {}
    real = type(prior).model_output

    def spy(self, latents_t, t, condition):
        seen["cond"] = condition
        return real(self, latents_t, t, condition)

    monkeypatch.setattr(type(prior), "model_output", spy)
    trainer.loss()
    cond = seen["cond"]
    image_zero = cond.image_latents.flatten(1).abs().amax(1) == 0
    token_zero = cond.embeddings.flatten(1).abs().amax(1) == 0
    assert 10 < int(image_zero.sum()) < 54  # about half, image only
    assert not bool(token_zero.any())  # the camera is never dropped with a part
    # The same draws without parts: the CLIP-dropped rows' tokens differ, the others match.
    g = torch.Generator().manual_seed(0)
    batch = BATCHES["zero123"](bank, 64, g)
    x0, full, _, _ = conditioned_batch(prior, "zero123", batch, trainer.cache)
    same = (full.embeddings - cond.embeddings).flatten(1).abs().amax(1) < 1e-6
    assert bool(same[image_zero].all())
    assert int((~same).sum()) == 64 - int(image_zero.sum())


def test_zero123_evaluation_samples_in_large_batches(monkeypatch):
    """Zero123's evaluation calls its sampler with 256 inputs by default (launch-bound U-Nets)."""
    from gs_priors.teachers import evaluation

    seen = []

    def fake_score(predict, pairs, seeds, batch_size, background):
        seen.append(batch_size)
        return "report"

    monkeypatch.setattr(evaluation, "score_novel_views", fake_score)
    out = evaluation.evaluate_teacher(object(), "zero123", [], [1.0, 3.0])
    assert out == {1.0: "report", 3.0: "report"} and seen == [256, 256]
    evaluation.evaluate_teacher(object(), "zero123", [], [1.0], batch_size=8)
    assert seen[-1] == 8


def test_zero123_camera_projection_starts_and_trains_as_the_official(teachers, datasets):
    """The CLIP block of clip_camera_projection starts as the identity with a zero bias, and
    trains at camera_projection_lr_scale times the learning rate."""
    prior = load_teacher(teachers["zero123"])
    linear = next(m for m in prior.camera_projection.modules() if isinstance(m, torch.nn.Linear))
    d = linear.out_features
    assert torch.equal(linear.weight[:, :d], torch.eye(d)) and not bool(linear.bias.any())
    assert bool(linear.weight[:, d:].any())  # the camera columns are not zero
    cfg = TeacherConfig.preset("tiny-zero123")
    trainer = TeacherTrainer(prior, cfg, ViewBank.load(datasets["zero123"], 16), seed=0)
    trainer.step()
    lrs = {id(p): g["lr"] for g in trainer.opt.param_groups for p in g["params"]}
    base = lrs[id(next(prior.unet.parameters()))]
    assert lrs[id(linear.weight)] == pytest.approx(cfg.camera_projection_lr_scale * base)
    assert lrs[id(next(prior.image_encoder.parameters()))] == pytest.approx(base)


def test_fused_optimizer_takes_the_same_steps(teachers, datasets):
    """Fused AdamW (the CUDA default; a CPU kernel exists too) is a speed option only: from the
    same weights and seed, three steps leave the weights where the multi-tensor AdamW does."""
    cfg = TeacherConfig.preset("tiny-zero123", lr=3e-3)
    bank = ViewBank.load(datasets["zero123"], 16)
    weights = {}
    for fused in (False, True):
        prior = load_teacher(teachers["zero123"])
        trainer = TeacherTrainer(prior, cfg, bank, seed=0, fused_optimizer=fused)
        assert trainer.opt.defaults["fused"] is (True if fused else None)
        for _ in range(3):
            trainer.step()
        weights[fused] = [p.detach().clone() for p in trainer.params]
    moved = max(
        float((a - b).abs().max())
        for a, b in zip(
            weights[False], load_teacher(teachers["zero123"]).unet.parameters(), strict=False
        )
    )
    assert moved > 3e-3  # the steps moved the weights by about 3 x lr
    # the two kernels round differently: within 1/30 of that movement
    for a, b in zip(weights[False], weights[True], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)
    # the default follows the device: multi-tensor on a CPU
    cpu = TeacherTrainer(load_teacher(teachers["zero123"]), cfg, bank, seed=0)
    assert cpu.fused_optimizer is False and not cpu.opt.defaults["fused"]


def test_compile_graphs_needs_a_compiled_cuda_unet(teachers, datasets):
    prior = load_teacher(teachers["zero123"])
    cfg = TeacherConfig.preset("tiny-zero123")
    bank = ViewBank.load(datasets["zero123"], 16)
    with pytest.raises(ValueError, match="compile_graphs: needs compile=True and a CUDA prior"):
        TeacherTrainer(prior, cfg, bank, compile=True, compile_graphs=True)
    with pytest.raises(ValueError, match="compile_graphs"):
        TeacherTrainer(prior, cfg, bank, compile_graphs=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", ["zero123", "imagedream", "zero123plus"])
def test_graphed_compiled_unet_trains_like_the_compiled_one(name, teachers, datasets, tmp_path):
    """``compile_graphs`` replays the compiled U-Net as CUDA graphs: from the same weights and
    seed its first steps' losses are the plain compiled ones (bf16 tolerance), and it saves."""
    import shutil

    losses = {}
    for graphs in (False, True):
        directory = tmp_path / f"t{graphs}"
        shutil.copytree(teachers[name], directory)
        prior = load_teacher(directory, device="cuda")
        cfg = TeacherConfig.preset(f"tiny-{name}")
        bank = ViewBank.load(datasets[name], 16, device="cuda")
        trainer = TeacherTrainer(prior, cfg, bank, seed=0, compile=True, compile_graphs=graphs)
        losses[graphs] = [float(trainer.step()) for _ in range(4)]
        trainer.save(directory)
        assert type(load_teacher(directory)).__name__ == type(prior).__name__
        torch._dynamo.reset()
    assert all(math.isfinite(v) for v in losses[True])
    assert losses[True] == pytest.approx(losses[False], rel=0.05, abs=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only refusal")
def test_the_gpu_script_refuses_compile_graphs_without_cuda(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
        + ["--compile-graphs"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "--compile-graphs: needs a CUDA GPU" in run.stderr.splitlines()[-1]
    assert not (tmp_path / "w").exists()


def test_the_gpu_script_refuses_no_eval_with_eval_only(tmp_path):
    (tmp_path / "r").mkdir()
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
        + ["--resume", str(tmp_path / "r"), "--eval-only", "--no-eval"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "--no-eval: --eval-only does nothing else than evaluate" in run.stderr.splitlines()[-1]
    assert not (tmp_path / "w").exists()


def test_data_in_work_is_reused_only_when_the_same_configuration_made_it(script_module, tmp_path):
    """A second run in one WORK reuses its data; data an earlier version made (e.g. one ring per
    object where the evaluation now draws four) stops the run with one line instead."""
    from gs_core.errors import ValidationError
    from gs_core.procedural.generator import ProceduralConfig, generate

    cfg = ProceduralConfig(objects=1, views=4, resolution=16, points=0, antialias=1)
    out = tmp_path / "data"
    assert not script_module.reusable(out, cfg)
    generate(cfg, out, workers=0, progress=False)
    assert script_module.reusable(out, cfg)
    other = cfg.model_copy(update={"views": 8})
    with pytest.raises(ValidationError, match=r"other settings \(views\)"):
        script_module.reusable(out, other)


DATA_PARALLEL_RANK = """
import json, sys
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from gs_priors.teachers import TeacherConfig, TeacherTrainer, ViewBank, load_teacher

teacher, data, out, device = sys.argv[1:5]
torch.set_num_threads(1)
if int(__import__("os").environ["WORLD_SIZE"]) > 1:
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
cfg = TeacherConfig.preset("tiny-zero123", lr=3e-3)
graphed = device == "cuda"  # as the GPU runs train: compiled, replayed as CUDA graphs
trainer = TeacherTrainer(load_teacher(teacher, device=device), cfg,
                         ViewBank.load(data, 16, device), seed=0, compile=graphed,
                         compile_graphs=graphed)
steps = trainer.train(steps=3, log=lambda _: None)["steps"]
timed = trainer.train(seconds=0.3, log=lambda _: None)
save_file({f"p{i}": p.detach().cpu().contiguous() for i, p in enumerate(trainer.params)}
          | {f"e{i}": e.cpu().contiguous() for i, e in enumerate(trainer.ema)},
          out + ".safetensors")
json.dump({"steps": steps, "timed_steps": timed["steps"], "seconds": timed["seconds"],
           "world": trainer.world}, open(out + ".json", "w"))
"""


def test_data_parallel_ranks_average_gradients_and_stop_together(teachers, datasets, tmp_path):
    """Two gloo ranks on the CPU (what ``--data-parallel`` runs over NCCL): the same weights and
    EMA on both after every step, not those of either rank's batches alone, and a budget in
    seconds ends at the same step on both."""
    _data_parallel_ranks(teachers, datasets, tmp_path, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_data_parallel_ranks_agree_over_nccl_with_graphed_unets(teachers, datasets, tmp_path):
    """The same over NCCL on two GPUs, each rank's U-Net compiled and replayed as CUDA graphs
    (the gradients averaged outside the graphs), as ``--data-parallel --compile-graphs`` runs."""
    _data_parallel_ranks(teachers, datasets, tmp_path, "cuda")


def _data_parallel_ranks(teachers, datasets, tmp_path, device: str) -> None:
    import os
    import socket

    from safetensors.torch import load_file

    script = tmp_path / "rank.py"
    script.write_text(DATA_PARALLEL_RANK)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def launch(rank: int, world: int, name: str) -> subprocess.Popen:
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}  # fmt: skip
        if device == "cuda":
            env["CUDA_VISIBLE_DEVICES"] = str(rank)
        cmd = [sys.executable, str(script), str(teachers["zero123"]), str(datasets["zero123"]),
               str(tmp_path / name), device]  # fmt: skip
        return subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)

    procs = [launch(0, 2, "r0"), launch(1, 2, "r1")]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    solo = launch(0, 1, "solo")
    _, err = solo.communicate(timeout=300)
    assert solo.returncode == 0, err[-2000:]
    r0, r1, alone = (load_file(tmp_path / f"{n}.safetensors") for n in ("r0", "r1", "solo"))
    i0, i1 = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("r0", "r1"))
    assert i0["world"] == i1["world"] == 2
    assert i0["steps"] == i1["steps"] == 3
    assert i0["timed_steps"] == i1["timed_steps"] >= 1 and i0["seconds"] == i1["seconds"]
    for k in r0:
        # bit-identical on the CPU; over NCCL the ranks' kernels may round apart a little
        tol = 0 if device == "cpu" else 1e-5
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=tol)
    # Averaged with the other rank's batches: not where rank 0's batches alone lead.
    assert max(float((r0[k] - alone[k]).abs().max()) for k in r0 if k.startswith("p")) > 1e-4


def test_the_gpu_script_trains_data_parallel_on_a_cpu(tmp_path):
    """``--data-parallel`` end to end, two gloo ranks on the CPU: one teacher over both, rank 0
    packing and evaluating it; one device named is refused in one line."""
    w, o = tmp_path / "w", tmp_path / "o"
    cmd = [
        sys.executable, str(SCRIPT), "--work", str(w), "--out", str(o), "--preset", "tiny",
        "--steps", "2", "--vae-steps", "2", "--seeds", "1", "--eval-steps", "1",
        "--objects", "2", "--eval-pairs", "2", "--priors", "zero123", "--no-fp16-check",
        "--data-parallel",
    ]  # fmt: skip
    bad = subprocess.run([*cmd, "--gpus", "cpu"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--data-parallel: --gpus names one device" in bad.stderr
    subprocess.run([*cmd, "--gpus", "cpu,cpu"], check=True, capture_output=True, timeout=600)
    results = json.loads((o / "results.json").read_text())
    assert results["exit_codes"] == [0, 0]
    t = results["teachers"]["zero123"]
    assert t["train"]["steps"] == 2 and t["train"]["data_parallel_ranks"] == 2
    assert t["checks"] and (o / "zero123.safetensors").stat().st_size > 0

"""GECO at paper size with random weights (timing only), batch 1: end to end (image -> G -> six
views -> LGM -> Gaussians), eager and replayed as CUDA graphs, where the time goes (condition
encoding, the U-Net with its CFG pair, the VAE decode at 960x640, LGM big), and one stage-I
(generator, then student) and one stage-II training step.

Issue target (H200, bf16): end to end <= 35 ms (paper: 0.35 s on an L40, 0.28 s of it for
the six views and 0.06 s for the Gaussians).

    python3 benchmarks/geco.py                       # paper size, CUDA, bf16
    python3 benchmarks/geco.py --preset tiny --device cpu --repeats 1   # smoke run on a CPU
    python3 benchmarks/geco.py --channels-last       # adds channels-last inference rows
    python3 benchmarks/geco.py --flops-only          # the work of each part (no GPU needed)
    python3 benchmarks/geco.py --compile vae,lgm --inference-only   # torch.compile rows

``--compile condition,unet,vae,lgm`` (any subset) compiles those modules through the model's
own option (``GECOConfig.compile``: inductor, default mode, ``dynamic=False``; ``condition`` is
the CLIP vision tower and the VAE encoder) after the eager rows and times every inference part
again, end to end eager and replayed as CUDA graphs (the graphs capture the
compiled kernels). A part that fails to compile is reported and left eager. Measured 2026-12-03
on one H200 (session 27): first compiled calls U-Net 103 s, VAE decoder 19 s, LGM 39 s; graphed
end to end 137.1 ms uncompiled, 102.5 ms compiled.

Every end-to-end row is followed by ``generate: ...`` rows, the call's own section timings
(condition, G, R, and what lies outside them), so the end-to-end time is located, not guessed.

Each inference part's floating-point work is counted with ``torch.utils.flop_counter`` on the
meta device (no memory, no GPU), so a time reads against the GPU's peak; ``--flops-only``
prints the counts alone.

Inference runs with bf16 weights; training steps keep fp32 master weights under bf16 autocast
(Adam at lr 1e-6 needs them). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

import torch


def build_teacher(preset: str, device: torch.device, dtype: torch.dtype, tmp: str):
    """Zero123++ v1.1 at paper size with random weights (as benchmarks/priors.py), or the tiny
    random checkpoint of gs_priors.tiny."""
    from gs_priors.zero123plus import Zero123PlusGuidance

    if preset == "tiny":
        from gs_priors.tiny import TINY_ZERO123PLUS_VIEW_SIZE, save_tiny_zero123plus

        path = save_tiny_zero123plus(tmp)
        return Zero123PlusGuidance.from_pretrained(
            path, device=device, dtype=dtype, view_size=TINY_ZERO123PLUS_VIEW_SIZE
        )

    from gs_priors.tiny import tiny_clip_tokenizer
    from gs_priors.zero123plus import PAPER_CONFIGS, build_modules, official_scheduler

    with torch.device(device):
        modules = build_modules(PAPER_CONFIGS)
    # Timing only: a byte-level tokenizer stands in for the CLIP vocabulary.
    scheduler = official_scheduler()
    return Zero123PlusGuidance(
        modules["vae"],
        modules["unet"],
        modules["text_encoder"],
        tiny_clip_tokenizer(max_length=77),
        modules["vision_encoder"],
        scheduler,
        ramping_coefficients=torch.linspace(0.0, 1.2, 77).tolist(),
    ).to(device=device, dtype=dtype)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int = 2, warm_s: float = 0.5) -> float:
    """Seconds per call of ``fn``, after ``warmup`` calls and, on CUDA, at least ``warm_s``
    seconds of calls. Why the time: the condition row of 2026-12-03 read 25.5 ms straight
    after the compile requests against 15.5 ms in the eager rows, the same code; a GPU whose
    clocks had dropped while idle, timed over 2 + 5 calls of 15 ms, is the likely cause (not
    verified); the next measurement shows whether this warm-up closes the gap."""
    t0 = time.perf_counter()
    done = 0
    while done < warmup or (device.type == "cuda" and time.perf_counter() - t0 < warm_s):
        fn()
        _sync(device)
        done += 1
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


class Progress:
    """Flushed progress lines with the seconds since the start, so a run cut short still says
    what was built and timed."""

    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self, line: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f} s] {line}", flush=True)


def timing_lpips(net: str, device: torch.device):
    """LPIPS for the stage II step: the released backbone when present, else torchvision's
    architecture with random weights (the step times the same; model hubs may be unreachable)."""
    from gs_core.errors import WeightsNotFoundError
    from gs_losses import LPIPS

    try:
        return LPIPS(net=net).to(device), "released weights"
    except WeightsNotFoundError:
        import torchvision

        arch = {"vgg": torchvision.models.vgg16, "alex": torchvision.models.alexnet}[net]
        with torch.device(device):
            state = arch(weights=None).state_dict()
        return LPIPS(net=net, backbone_weights=state).to(device), "random backbone"


INFERENCE_PARTS = (
    "condition (CLIP + VAE encode)",
    "U-Net, CFG pair (write + read passes)",
    "VAE decode (960x640 at paper size)",
    "LGM (six views -> Gaussians)",
)


def inference_flops(preset: str) -> dict[str, float]:
    """Floating-point operations of each inference part (:data:`INFERENCE_PARTS`, and
    ``"end to end"``) at ``preset``, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from gs_method_geco.config import GECOConfig
    from gs_method_geco.model import GECO

    meta = torch.device("meta")
    if preset != "paper":
        raise SystemExit("--flops-only counts the paper preset")
    teacher = build_teacher(preset, meta, torch.float32, "")
    # GECO copies the teacher's noise schedule to the host when it is built, and a meta tensor
    # holds no values: the schedule's host copy stands in for it (only this count does this).
    teacher._alphas_cache[meta] = teacher._alphas_cpu
    cfg = GECOConfig.preset(preset, reconstructor={"weights": None})
    with torch.device(meta):
        model = GECO.from_teacher(teacher, cfg).eval()
    g = model.generator
    s = cfg.reconstructor.lgm.input_size
    images = torch.empty(1, 4, 320, 320, device=meta)
    out: dict[str, float] = {}

    def count(name: str, fn):
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            result = fn()
        out[name] = float(counter.get_total_flops())
        return result

    # The null reference's moments are encoded on the first call only (cached): warm them, so
    # the count is every later call's work.
    g.encode_condition(images, None)
    cond = count(INFERENCE_PARTS[0], lambda: g.encode_condition(images, None))
    latents = count(INFERENCE_PARTS[1], lambda: g(g.sample_noise(1, None), cond))
    count(INFERENCE_PARTS[2], lambda: g.decode(latents))
    # R's 9-channel input (normalised views and Plücker rays) is host-side preparation.
    count(
        INFERENCE_PARTS[3],
        lambda: model._params_from_input(torch.empty(1, 6, 9, s, s, device=meta)),
    )
    out["end to end"] = sum(out[p] for p in INFERENCE_PARTS)
    return out


def main(argv=None) -> list[tuple[str, str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=["paper", "tiny"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--channels-last", action="store_true", help="add channels-last inference rows")
    ap.add_argument("--flops-only", action="store_true", help="count FLOPs only (paper preset)")
    ap.add_argument(
        "--compile",
        type=compile_parts,
        default=(),
        help="comma-separated subset of condition,unet,vae,lgm to compile for extra rows",
    )
    ap.add_argument(
        "--inference-only", action="store_true", help="skip the stage I and stage II steps"
    )
    args = ap.parse_args(argv)
    if args.flops_only:
        flops = inference_flops(args.preset)
        print("| part | TFLOP |")
        print("|---|---:|")
        for part, f in flops.items():
            print(f"| {part} | {f / 1e12:.3f} |")
        return [(part, "flops", f) for part, f in flops.items()]
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/geco.py: no CUDA device (use --device cpu with --preset tiny)")
    dtype = getattr(torch, args.dtype)
    say = Progress()
    say(f"GECO benchmark, preset {args.preset}, {args.dtype} on {device}: importing")

    from gs_core.testing import tiny_rgba_images
    from gs_method_geco.config import GECOConfig
    from gs_method_geco.model import GECO
    from gs_method_geco.training import JointTrainingModule, VSDTrainingModule

    say("imported; building the teacher")
    rows: list[tuple[str, str, float]] = []

    def row(what: str, mode: str, seconds: float) -> None:
        rows.append((what, mode, seconds))
        say(f"{what} ({mode}): {seconds * 1e3:.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        # fp32 master weights for the training steps; a bf16 copy serves inference. Every
        # network is initialised on the device: a CPU init of ~2 B random parameters (twice)
        # and the copy over took longer than the whole timing run.
        teacher = build_teacher(args.preset, device, torch.float32, tmp)
        say(f"teacher built on {device}")
        cfg = GECOConfig.preset(args.preset, reconstructor={"weights": None})
        with torch.device(device):
            model = GECO.from_teacher(teacher, cfg)
        say("GECO built (fp32 master weights)")
        # The inference copy: the same weights cast on the device (no second random init).
        infer = copy.deepcopy(model).to(dtype).eval()
        say(f"inference copy cast to {args.dtype}")
        size = 320 if args.preset == "paper" else 32
        images = tiny_rgba_images(1, size).to(device)
        params = {
            "G (U-Net)": sum(p.numel() for p in infer.generator.unet.parameters()) / 1e6,
            "LGM": sum(p.numel() for p in infer.reconstructor.parameters()) / 1e6,
        }
        say("; ".join(f"{k}: {v:.0f} M params" for k, v in params.items()))

        # ------------------------------------------------------------ inference
        with torch.no_grad():
            gen = torch.Generator(device).manual_seed(0)
            cond = infer.generator.encode_condition(images, gen)
            noise = infer.generator.sample_noise(1, gen)
            latents = infer.generator(noise, cond)
            views = infer.generator.decode(latents)
            for graphed in [False, True] if device.type == "cuda" else [False]:
                infer.config.cuda_graphs = graphed
                end_to_end(
                    infer, images, device, args.repeats, row, "graphed" if graphed else "eager"
                )
            infer.config.cuda_graphs = False
            parts = dict(
                zip(
                    INFERENCE_PARTS,
                    (
                        lambda: infer.generator.encode_condition(images, gen),
                        lambda: infer.generator(noise, cond),
                        lambda: infer.generator.decode(latents),
                        lambda: infer.reconstruct_params(views),
                    ),
                    strict=True,
                )
            )
            for name, fn in parts.items():
                row(name, "eager", timed(fn, device, args.repeats))
            if args.channels_last:
                # Every convolution's weights (U-Net, VAE, LGM) channels-last; the graphs are
                # recorded again for the new layout.
                infer.to(memory_format=torch.channels_last)
                infer.__dict__["_graphs"] = {}
                for graphed in [False, True] if device.type == "cuda" else [False]:
                    infer.config.cuda_graphs = graphed
                    mode = ("graphed" if graphed else "eager") + ", channels-last"
                    fn = lambda: infer.generate(images, seed=0)  # noqa: E731
                    row("end to end (generate)", mode, timed(fn, device, args.repeats))
                infer.config.cuda_graphs = False
                for name, fn in parts.items():
                    row(name, "eager, channels-last", timed(fn, device, args.repeats))
            if args.compile:
                compile_rows(infer, args.compile, images, parts, device, args.repeats, row, say)
        if args.inference_only:
            print_table(rows, params, args, device)
            say("done")
            return rows
        infer = None  # its memory goes before the training steps
        if device.type == "cuda":
            torch.cuda.empty_cache()

        # ------------------------------------------------------------ training steps
        autocast = (
            torch.autocast(device.type, dtype=dtype)
            if device.type == "cuda"
            else torch.autocast("cpu", enabled=False)
        )
        vsd = VSDTrainingModule(model, teacher, images=images.cpu())
        opts = vsd.configure_optimizers()
        batch = {"images": images}
        say("stage I module built")

        def stage1(step: int):
            def run():
                for opt in opts.values():
                    opt.zero_grad(set_to_none=True)
                with autocast:
                    loss = sum(vsd.training_step(batch, step).values())
                loss.backward()
                opts[vsd.optimizers_to_step(step)[0]].step()

            return run

        train_repeats = max(1, args.repeats // 4)
        row("stage I step: generator (VSD)", "eager", timed(stage1(0), device, train_repeats, 1))
        row("stage I step: student (eq. 2)", "eager", timed(stage1(1), device, train_repeats, 1))
        vsd = opts = None
        if device.type == "cuda":
            torch.cuda.empty_cache()

        res = model.config.render_resolution
        pseudo = {
            "images": images.cpu(),
            "noise": model.generator.sample_noise(1, None).cpu(),
            "viewmats": model.lgm_cameras("cpu").viewmats[None, :4].contiguous(),
            "Ks": model.lgm_cameras("cpu").resized(res, res).Ks[None, :4].contiguous(),
            "rgb": torch.rand(1, 4, 3, res, res),
        }
        joint = JointTrainingModule(model, data=pseudo)
        lpips_note = ""
        if model.config.lambda_lpips > 0:
            # The module builds LPIPS on first use and keeps it; handing it one whose backbone
            # may be random keeps the step runnable where torchvision's weights are absent.
            joint._lpips, lpips_note = timing_lpips(model.config.lpips_net, device)
            lpips_note = f", LPIPS {lpips_note}"
        opt = joint.configure_optimizers()["model"]
        jbatch = {k: v.to(device) for k, v in pseudo.items()}
        say(f"stage II module built{lpips_note}")

        def stage2():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = sum(joint.training_step(jbatch, 0).values())
            loss.backward()
            opt.step()

        row(
            f"stage II step (batch 1, 4 views{lpips_note})",
            "eager",
            timed(stage2, device, train_repeats, 1),
        )

    print_table(rows, params, args, device)
    say("done")
    return rows


COMPILABLE = ("condition", "unet", "vae", "lgm")


def compile_parts(text: str) -> tuple[str, ...]:
    """``--compile``'s value: a comma-separated subset of :data:`COMPILABLE`."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [n for n in names if n not in COMPILABLE]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(COMPILABLE)}, got {text!r}"
        )
    return names


def compile_rows(infer, which, images, parts, device, repeats, row, say) -> None:
    """Compile ``which`` of the condition encoders, G's U-Net, the VAE decoder and R in place
    (``nn.Module.compile``, static shapes), then time the inference parts and ``generate`` again
    (eager and graphed) as ``compiled (...)`` rows."""
    # The model's own option (``GECOConfig.compile``), so the rows time what users switch on.
    infer.config = infer.config.model_copy(update={"compile": list(which)})
    infer.compile_parts()
    say(f"{', '.join(which)}: compile requested (traced on first call)")
    label = f"compiled ({'+'.join(which)})"
    infer.__dict__["_graphs"] = {}
    for name, fn in parts.items():
        t0 = time.perf_counter()
        try:
            fn()
            _sync(device)
        except Exception as exc:  # a failed compile is a result to report, not a crash
            say(f"{name}: compiled call failed ({type(exc).__name__}: {exc}); skipped")
            continue
        say(f"{name}: first compiled call {time.perf_counter() - t0:.1f} s")
        row(name, label, timed(fn, device, repeats))
    for graphed in [False, True] if device.type == "cuda" else [False]:
        infer.config.cuda_graphs = graphed
        mode = label + (", graphed" if graphed else "")
        try:
            end_to_end(infer, images, device, repeats, row, mode)
        except Exception as exc:
            say(f"end to end ({mode}) failed ({type(exc).__name__}: {exc}); skipped")
            continue
    infer.config.cuda_graphs = False


def end_to_end(infer, images, device, repeats, row, mode: str) -> None:
    """Rows for ``generate``: its time per call, then where that time goes as ``generate``
    itself records it (``GenerationOutput.timings``, each section synchronised): the condition,
    G (U-Net and VAE decode), R with its input preparation, and the rest of the call (seeding,
    checks, the Gaussians' assembly and the synchronisations), so a gap between the end-to-end
    row and the parts' rows is located rather than guessed."""
    row(
        "end to end (generate)",
        mode,
        timed(lambda: infer.generate(images, seed=0), device, repeats),
    )
    sums: dict[str, float] = {}
    total = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = infer.generate(images, seed=0)
        _sync(device)
        total += time.perf_counter() - t0
        for key, seconds in out.timings.items():
            sums[key] = sums.get(key, 0.0) + seconds
    for key, seconds in sums.items():
        row(f"generate: {key}", mode, seconds / repeats)
    row("generate: outside its sections", mode, (total - sum(sums.values())) / repeats)


def print_table(rows, params, args, device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\ndevice: {name}; {args.dtype}; batch 1; preset {args.preset}; random weights")
    print("; ".join(f"{k}: {v:.0f} M params" for k, v in params.items()) + "\n")
    flops = inference_flops(args.preset) if args.preset == "paper" else {}
    flops["end to end (generate)"] = flops.get("end to end", 0.0)
    print("| what | mode | ms | TFLOP | TFLOP/s |")
    print("|---|---|---:|---:|---:|")
    for what, mode, s in rows:
        f = flops.get(what)
        work = f"| {f / 1e12:.3f} | {f / s / 1e12:.0f} |" if f else "| | |"
        print(f"| {what} | {mode} | {s * 1e3:.1f} {work}")


if __name__ == "__main__":
    main()

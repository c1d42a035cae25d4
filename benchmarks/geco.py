"""GECO at paper size with random weights (timing only), batch 1: end to end (image -> G -> six
views -> LGM -> Gaussians), eager and replayed as CUDA graphs, where the time goes (condition
encoding, the U-Net with its CFG pair, the VAE decode at 960x640, LGM big), and one stage-I
(generator, then student) and one stage-II training step.

Issue target (H200, bf16): end to end <= 35 ms (paper: 0.35 s on an L40, 0.28 s of it for
the six views and 0.06 s for the Gaussians).

    python3 benchmarks/geco.py                       # paper size, CUDA, bf16
    python3 benchmarks/geco.py --preset tiny --device cpu --repeats 1   # smoke run on a CPU

Inference runs with bf16 weights; training steps keep fp32 master weights under bf16 autocast
(Adam at lr 1e-6 needs them). Prints a markdown table.
"""

from __future__ import annotations

import argparse
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
    from diffusers import EulerAncestralDiscreteScheduler

    from gs_priors.tiny import tiny_clip_tokenizer
    from gs_priors.zero123plus import PAPER_CONFIGS, build_modules

    with torch.device(device):
        modules = build_modules(PAPER_CONFIGS)
    # Timing only: a byte-level tokenizer stands in for the CLIP vocabulary.
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        prediction_type="v_prediction",
        timestep_spacing="linspace",
        steps_offset=1,
    )
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


def timed(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Seconds per call of ``fn`` (after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper", choices=["paper", "tiny"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks/geco.py: no CUDA device (use --device cpu with --preset tiny)")
    dtype = getattr(torch, args.dtype)

    from gs_core.testing import tiny_rgba_images
    from gs_method_geco.config import GECOConfig
    from gs_method_geco.model import GECO
    from gs_method_geco.training import JointTrainingModule, VSDTrainingModule

    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        # fp32 master weights for the training steps; a bf16 copy serves inference.
        teacher = build_teacher(args.preset, device, torch.float32, tmp)
        cfg = GECOConfig.preset(args.preset, reconstructor={"weights": None})
        model = GECO.from_teacher(teacher, cfg)
        infer = GECO.from_teacher(teacher, cfg).to(dtype).eval()
        size = 320 if args.preset == "paper" else 32
        images = tiny_rgba_images(1, size).to(device)
        params = {
            "G (U-Net)": sum(p.numel() for p in infer.generator.unet.parameters()) / 1e6,
            "LGM": sum(p.numel() for p in infer.reconstructor.parameters()) / 1e6,
        }

        # ------------------------------------------------------------ inference
        with torch.no_grad():
            gen = torch.Generator(device).manual_seed(0)
            cond = infer.generator.encode_condition(images, gen)
            noise = infer.generator.sample_noise(1, gen)
            latents = infer.generator(noise, cond)
            views = infer.generator.decode(latents)
            for graphed in [False, True] if device.type == "cuda" else [False]:
                infer.config.cuda_graphs = graphed
                mode = "graphed" if graphed else "eager"
                rows.append(
                    (
                        "end to end (generate)",
                        mode,
                        timed(lambda: infer.generate(images, seed=0), device, args.repeats),
                    )
                )
            infer.config.cuda_graphs = False
            parts = {
                "condition (CLIP + 2 VAE encodes)": lambda: infer.generator.encode_condition(
                    images, gen
                ),
                "U-Net, CFG pair (write + read passes)": lambda: infer.generator(noise, cond),
                "VAE decode (960x640 at paper size)": lambda: infer.generator.decode(latents),
                "LGM (six views -> Gaussians)": lambda: infer.reconstruct_params(views),
            }
            for name, fn in parts.items():
                rows.append((name, "eager", timed(fn, device, args.repeats)))
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

        def stage1(step: int):
            def run():
                for opt in opts.values():
                    opt.zero_grad(set_to_none=True)
                with autocast:
                    loss = sum(vsd.training_step(batch, step).values())
                loss.backward()
                opts[vsd.optimizers_to_step(step)[0]].step()

            return run

        rows.append(
            (
                "stage I step: generator (VSD)",
                "eager",
                timed(stage1(0), device, max(1, args.repeats // 4), 1),
            )
        )
        rows.append(
            (
                "stage I step: student (eq. 2)",
                "eager",
                timed(stage1(1), device, max(1, args.repeats // 4), 1),
            )
        )
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
        opt = joint.configure_optimizers()["model"]
        jbatch = {k: v.to(device) for k, v in pseudo.items()}

        def stage2():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = sum(joint.training_step(jbatch, 0).values())
            loss.backward()
            opt.step()

        rows.append(
            (
                "stage II step (batch 1, 4 views)",
                "eager",
                timed(stage2, device, max(1, args.repeats // 4), 1),
            )
        )

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\ndevice: {name}; {args.dtype}; batch 1; preset {args.preset}; random weights")
    print("; ".join(f"{k}: {v:.0f} M params" for k, v in params.items()) + "\n")
    print("| what | mode | ms |")
    print("|---|---|---:|")
    for what, mode, s in rows:
        print(f"| {what} | {mode} | {s * 1e3:.1f} |")


if __name__ == "__main__":
    main()

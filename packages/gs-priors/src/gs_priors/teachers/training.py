"""Training a procedural teacher: the prior's own conditioning code, its noise schedule and
prediction target, classifier-free-guidance dropout, bf16 autocast and an EMA of the weights.

The guidance classes build conditions under ``torch.no_grad`` for inference; training calls the
same methods with gradients (``__wrapped__`` of their ``torch.no_grad`` decorator), so the
trained conditioning path is exactly the one samplers and score distillation run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from gs_priors.forward_process import add_noise, prediction_target, to_sample
from gs_priors.teachers.config import TeacherConfig
from gs_priors.teachers.data import BATCHES, MultiViewBatch, ViewBank, Zero123Batch

# The modules each prior trains; everything else (VAE, text encoder) stays frozen.
TRAINED: dict[str, tuple[str, ...]] = {
    "zero123": ("unet", "image_encoder", "camera_projection"),
    "zero123plus": ("unet", "vision_encoder"),
    "imagedream": ("unet", "image_encoder"),
}
# Where each trained module is saved in the checkpoint layout.
SUBFOLDERS = {"camera_projection": "clip_camera_projection"}
# Steps between the data-parallel ranks' agreements on the time trained: every rank must stop
# at the same step and see the same learning rate, and each agreement waits for the GPU (a
# host sync), so not every step.
SYNC_EVERY = 25


def _with_grad(method: Callable) -> Callable:
    return getattr(method, "__wrapped__", method)


def _mix(cond, null, mask: torch.Tensor):
    """``cond`` with the rows where ``mask`` ``[N]`` is set taken from ``null``."""
    out = {}
    for f in dataclasses.fields(cond):
        a, b = getattr(cond, f.name), getattr(null, f.name)
        if isinstance(a, torch.Tensor) and a.shape[:1] == mask.shape and a.shape == b.shape:
            m = mask.view(-1, *([1] * (a.ndim - 1)))
            out[f.name] = torch.where(m, b.to(a), a)
        else:
            out[f.name] = a
    return type(cond)(**out)


@torch.no_grad()
def latent_cache(
    prior, name: str, bank: ViewBank, batch_size: int = 256
) -> dict[str, torch.Tensor]:
    """The VAE latents a training step would otherwise encode again and again, computed once
    with the prior's own methods: ``views`` ``[N, V, 4, h, w]`` (Zero123: unscaled
    :meth:`reference_latents`; ImageDream: scaled :meth:`encode_images`), and for Zero123++
    ``grids`` ``[N, S, 4, 3h, 2h]`` (the six views of each set tiled) and ``references``
    ``[N, S, 4, h_r, w_r]``."""
    n, v = bank.num_objects, bank.views_per_object
    flat = [(i, j) for i in range(n) for j in range(v)]

    def encode(fn, items: list[tuple[int, int]], *shape_of) -> torch.Tensor:
        out = []
        for s in range(0, len(items), batch_size):
            chunk = items[s : s + batch_size]
            obj = torch.tensor([i for i, _ in chunk], device=bank.rgba.device)
            view = torch.tensor([j for _, j in chunk], device=bank.rgba.device)
            out.append(fn(obj, view).float())
        x = torch.cat(out)
        return x.view(*shape_of, *x.shape[1:])

    if name == "zero123":
        return {
            "views": encode(lambda o, w: prior.reference_latents(bank.images(o, w)), flat, n, v)
        }
    if name == "imagedream":
        return {"views": encode(lambda o, w: prior.encode_images(bank.images(o, w)), flat, n, v)}
    from gs_priors.zero123plus import tile_views

    sets = [(i, 7 * k) for i in range(n) for k in range(v // 7)]
    six = torch.arange(1, 7, device=bank.rgba.device)

    def grid(o, start):
        views = bank.rgba[o[:, None], start[:, None] + six].float() / 255.0
        return prior.encode_images(tile_views(views))

    return {
        "grids": encode(grid, sets, n, v // 7),
        "references": encode(
            lambda o, w: prior.reference_latents(bank.images(o, w)), sets, n, v // 7
        ),
    }


def zero123_dropout(
    r: torch.Tensor, joint: float, part: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Zero123's official dropout bands from uniform draws ``r`` ``[B]``: ``[0, part)`` drops
    the CLIP embedding, ``[part, part + joint)`` the whole condition (the returned mask, mixed
    with the null condition as for the other priors), ``[part + joint, 2 part + joint)`` the
    image latent. Returns the whole-condition mask and ``{"clip": [B], "image": [B]}``."""
    both = (r >= part) & (r < part + joint)
    return both, {"clip": r < part, "image": (r >= part + joint) & (r < 2 * part + joint)}


def conditioned_batch(
    prior,
    name: str,
    batch,
    cache: dict[str, torch.Tensor] | None = None,
    parts: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, object, object, int]:
    """Clean target latents ``[N, 4, h, w]``, the condition and its null counterpart (``N``
    rows) and the rows per object (1, or the views denoised jointly). ``cache`` from
    :func:`latent_cache` replaces the VAE encodings; ``parts`` (Zero123, from
    :func:`zero123_dropout`) zeroes the CLIP embedding or the image latent of some rows."""
    cls = type(prior)
    if name == "zero123":
        assert isinstance(batch, Zero123Batch)
        if cache is None:
            with torch.no_grad():
                x0 = prior.encode_images(batch.targets)
            latents = None
        else:
            x0 = cache["views"][batch.obj, batch.dst] * prior.latent_scaling
            latents = cache["views"][batch.obj, batch.src]
        ref = _with_grad(cls.encode_reference)(prior, batch.inputs, image_latents=latents)
        if parts is not None:
            # Zeros are the official null of both: an empty prompt's CLIP embedding and the
            # zeroed concatenated latent.
            ref = dataclasses.replace(
                ref,
                clip_embeds=ref.clip_embeds.masked_fill(parts["clip"].view(-1, 1, 1), 0.0),
                image_latents=ref.image_latents.masked_fill(parts["image"].view(-1, 1, 1, 1), 0.0),
            )
        cond = _with_grad(cls.camera_condition)(prior, ref, batch.d_elevation, batch.d_azimuth)
        return x0, cond, prior.null_condition(cond), 1
    assert isinstance(batch, MultiViewBatch)
    if name == "zero123plus":
        from gs_priors.zero123plus import tile_views

        if cache is None:
            with torch.no_grad():
                x0 = prior.encode_images(tile_views(batch.targets))
            refs = None
        else:
            x0 = cache["grids"][batch.obj, batch.src // 7]
            refs = cache["references"][batch.obj, batch.src // 7]
        cond = _with_grad(cls.encode_reference)(prior, batch.inputs, reference_latents=refs)
        return x0, cond, prior.null_condition(cond), 1
    from gs_priors.imagedream import orbit_cameras

    b, v = batch.targets.shape[:2]
    if cache is None:
        with torch.no_grad():
            x0 = prior.encode_images(batch.targets.flatten(0, 1))
        latents = None
    else:
        x0 = cache["views"][batch.obj[:, None], batch.dst].flatten(0, 1)
        latents = cache["views"][batch.obj, batch.src]
    ref = _with_grad(cls.encode_reference)(prior, batch.inputs, input_latents=latents)
    cams = orbit_cameras(batch.elevation.flatten().cpu(), batch.d_azimuth.flatten().cpu())
    cond = _with_grad(cls.condition)(prior, ref, cams.view(b, v, -1).to(batch.inputs.device))
    return x0, cond, prior.null_condition(cond), v


def implied_x0(prior, xt: torch.Tensor, t: torch.Tensor, condition) -> torch.Tensor:
    """The clean latents ``[N, 4, h, w]`` (float32) the prior's output at ``xt`` / ``t``
    implies under ``condition``, whatever its prediction type: what the probes of
    :mod:`~gs_priors.teachers.camera_use` and :mod:`~gs_priors.teachers.condition_use` score."""
    raw = prior.model_output(xt, t, condition).float()
    return to_sample(raw, xt, t, prior.alphas_cumprod, prior.prediction_type)


def v_loss_weight(prediction_type: str, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Weights ``[N]`` turning the MSE of ``prediction_type``'s target at ``alpha_bar`` ``[N]``
    into the v-prediction loss of the same prediction: with ``x_t = a x0 + s eps``, an error
    ``d`` of the implied ``x0`` costs ``SNR d^2`` as epsilon, ``d^2`` as sample and
    ``(1 + SNR) d^2`` as v, so epsilon is weighted ``1 / alpha_bar`` and sample
    ``1 / (1 - alpha_bar)``."""
    if prediction_type == "epsilon":
        return 1.0 / alpha_bar
    if prediction_type == "sample":
        return 1.0 / (1.0 - alpha_bar)
    return torch.ones_like(alpha_bar)


class TeacherTrainer:
    """Optimises ``prior``'s trainable modules (:data:`TRAINED`) on ``bank``'s batches.

    ``channels_last`` (default: on CUDA) stores the U-Net's convolution weights channels-last;
    ``compile`` compiles the U-Net in place with static shapes (``nn.Module.compile``: the
    state-dict keys stay the checkpoint's). ``compile_graphs`` (CUDA, with ``compile``) compiles
    it in inductor's ``reduce-overhead`` mode, which replays the compiled forward and backward as
    CUDA graphs: the step is bound by launching kernels, not by arithmetic (the GPU idles for
    half to three quarters of it, README). ``fused_optimizer`` (default: on CUDA) updates every
    parameter in one fused AdamW kernel rather than a chain of multi-tensor ones: the optimizer
    step stays eager outside the graphed U-Net, and in the eleventh run the GPU still idled a
    quarter of the time. All only change speed; ``benchmarks/teachers.py`` times them.

    Data parallel: with a ``torch.distributed`` process group initialised (one process per GPU,
    ``train_procedural_teachers.py --data-parallel``), rank 0's weights are broadcast at the
    start, each rank draws its own batches, and the gradients are averaged before every clip and
    step, so every rank holds the same weights and EMA; a batch is then ``batch_size`` per rank.
    The time trained is rank 0's, agreed every :data:`SYNC_EVERY` steps, so every rank stops at
    the same step with the same learning rate."""

    def __init__(
        self,
        prior,
        cfg: TeacherConfig,
        bank: ViewBank,
        seed: int = 0,
        cache_latents: bool = True,
        channels_last: bool | None = None,
        compile: bool = False,
        compile_graphs: bool = False,
        fused_optimizer: bool | None = None,
    ):
        if compile_graphs and not (compile and prior.device.type == "cuda"):
            raise ValueError("compile_graphs: needs compile=True and a CUDA prior")
        self.compiled, self.compile_graphs = compile, compile_graphs
        self.prior, self.cfg, self.bank = prior, cfg, bank
        self.name = cfg.prior
        self.modules: dict[str, nn.Module] = {n: getattr(prior, n) for n in TRAINED[self.name]}
        for m in self.modules.values():
            m.requires_grad_(True)
            m.train()
        self.params = [p for m in self.modules.values() for p in m.parameters()]
        self.world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        self.rank = dist.get_rank() if self.world > 1 else 0
        if self.world > 1:
            with torch.no_grad():  # before channels-last: collectives want contiguous tensors
                for p in self.params:
                    dist.broadcast(p.data, src=0)
        self.ema = [p.detach().clone() for p in self.params]
        groups = [
            {
                "params": list(m.parameters()),
                "lr_scale": cfg.camera_projection_lr_scale if n == "camera_projection" else 1.0,
            }
            for n, m in self.modules.items()
        ]
        self.device = prior.device
        if fused_optimizer is None:
            fused_optimizer = self.device.type == "cuda"
        self.fused_optimizer = fused_optimizer
        self.opt = torch.optim.AdamW(
            groups,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            betas=(0.9, 0.99),
            fused=fused_optimizer or None,
        )
        # Each rank its own batches: the same stream on every rank would average identical
        # gradients.
        self.generator = torch.Generator(self.device).manual_seed(seed + 1_000_003 * self.rank)
        self.step_count = 0
        # The run's budget for the cooldown (set_horizon) and the training time spent so far.
        self.trained_seconds = 0.0
        self._horizon: tuple[int, float, int | None, float | None] | None = None
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.device.type == "cuda"):
            self.cache = latent_cache(prior, cfg.prior, bank) if cache_latents else None
        if channels_last is None:
            channels_last = self.device.type == "cuda"
        if channels_last:
            prior.unet.to(memory_format=torch.channels_last)
        if compile:
            # Static shapes: the batches never change size, and with dynamic shapes inductor's
            # backward for Zero123++ (whose U-Net runs at two shapes, the reference pass and the
            # grid) failed on an H200 with a bad reduction workspace view on the first step.
            mode = "reduce-overhead" if compile_graphs else None
            prior.unet.compile(dynamic=False, mode=mode)

    def loss(self) -> torch.Tensor:
        prior, cfg = self.prior, self.cfg
        batch = BATCHES[self.name](self.bank, cfg.batch_size, self.generator)
        parts = None
        if self.name == "zero123" and cfg.reference_dropout > 0:
            r = torch.rand(batch.inputs.shape[0], device=self.device, generator=self.generator)
            drop, parts = zero123_dropout(r, cfg.condition_dropout, cfg.reference_dropout)
        x0, cond, null, per = conditioned_batch(prior, self.name, batch, self.cache, parts)
        objects = x0.shape[0] // per
        dev = x0.device
        if parts is None:
            drop = torch.rand(objects, device=dev, generator=self.generator)
            drop = drop < cfg.condition_dropout
        cond = _mix(cond, null, drop.repeat_interleave(per))
        # One timestep per object: views denoised jointly share it.
        t = torch.randint(
            prior.num_train_timesteps, (objects,), device=dev, generator=self.generator
        ).repeat_interleave(per)
        noise = torch.randn(x0.shape, device=dev, generator=self.generator)
        x0 = x0.float()  # the forward process in float32, whatever the encoder returned
        xt = add_noise(x0, noise, t, prior.alphas_cumprod)
        out = prior.model_output(xt, t, cond)
        target = prediction_target(x0, noise, t, prior.alphas_cumprod, prior.prediction_type)
        err = (out.float() - target).pow(2).flatten(1).mean(1)
        if cfg.loss_weighting == "uniform":
            return err.mean()
        return (v_loss_weight(prior.prediction_type, prior.alphas_cumprod[t]) * err).mean()

    def set_horizon(self, seconds: float | None = None, steps: int | None = None) -> None:
        """The budget of the run from now on (training seconds, steps), which ``cooldown``
        decays the learning rate towards; a run trained in several :meth:`train` calls (one per
        checkpoint) sets it once."""
        self._horizon = (self.step_count, self.trained_seconds, steps, seconds)

    def lr_factor(self) -> float:
        """The learning rate's share of ``lr`` at the next step: warm-up, then the cooldown."""
        cfg = self.cfg
        f = min(1.0, (self.step_count + 1) / max(1, cfg.warmup_steps))
        if cfg.cooldown > 0 and self._horizon is not None:
            n0, s0, steps, seconds = self._horizon
            done = 0.0
            if steps:
                done = max(done, (self.step_count - n0) / steps)
            if seconds:
                done = max(done, (self.trained_seconds - s0) / seconds)
            f *= min(1.0, max(0.0, (1.0 - done) / cfg.cooldown))
        return f

    def step(self) -> float:
        cfg = self.cfg
        lr = cfg.lr * self.lr_factor()
        for g in self.opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        if self.compile_graphs:
            # A new step: the graphs' outputs of the last one are no longer read.
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = self.loss()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        # EMA with a warm-up, so early checkpoints are not dominated by the initialisation.
        decay = min(cfg.ema_decay, (1 + self.step_count) / (10 + self.step_count))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1 - decay)
        self.step_count += 1
        return loss.detach()

    def _average_gradients(self) -> None:
        """Every rank's gradients replaced by their mean over the ranks, in one collective (a
        flat copy: the U-Net's convolution gradients are channels-last, which collectives do
        not take)."""
        for p in self.params:
            if p.grad is None:  # a module unused by this rank's batch still takes part
                p.grad = torch.zeros_like(p)
        grads = [p.grad for p in self.params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world)
        views = flat.split([g.numel() for g in grads])
        torch._foreach_copy_(grads, [v.view(g.shape) for v, g in zip(views, grads, strict=True)])

    def _agreed_seconds(self, elapsed: float) -> float:
        """Rank 0's ``elapsed``, on every rank (itself when not data parallel)."""
        if self.world == 1:
            return elapsed
        t = torch.tensor([elapsed], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t.item())

    def train(
        self,
        seconds: float | None = None,
        steps: int | None = None,
        log: Callable[[str], None] = print,
        log_every: int = 100,
    ) -> dict:
        """Train for ``seconds`` of wall time or ``steps`` steps (whichever ends first)."""
        if seconds is None and steps is None:
            raise ValueError("give seconds or steps")
        t0 = time.perf_counter()
        losses: list[torch.Tensor] = []
        history = []
        n0, trained0 = self.step_count, self.trained_seconds
        agreed = 0.0
        while True:
            losses.append(self.step())
            done = self.step_count - n0
            elapsed = time.perf_counter() - t0
            if self.world > 1:
                # Between agreements every rank keeps the last agreed time, so all stop (and
                # decay the learning rate) at the same step.
                if done % SYNC_EVERY == 0:
                    agreed = self._agreed_seconds(elapsed)
                elapsed = agreed
            self.trained_seconds = trained0 + elapsed
            if done % log_every == 0:
                mean = float(torch.stack(losses[-log_every:]).mean())
                history.append(
                    {
                        "step": self.step_count,
                        "seconds": elapsed,
                        "loss": mean,
                        "lr": self.opt.param_groups[0]["lr"],
                    }
                )
                log(
                    f"{self.name} step {self.step_count} loss {mean:.4f} "
                    f"{done * self.cfg.batch_size * self.world / max(elapsed, 1e-9):.0f} "
                    "samples/s"
                )
            if (steps is not None and done >= steps) or (
                seconds is not None and elapsed >= seconds
            ):
                break
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = self._agreed_seconds(time.perf_counter() - t0)
        done = self.step_count - n0
        return {
            "steps": done,
            "seconds": elapsed,
            "samples_per_second": done * self.cfg.batch_size * self.world / elapsed,
            "final_loss": float(torch.stack(losses[-min(len(losses), log_every) :]).mean()),
            "history": history,
        }

    @contextlib.contextmanager
    def evaluating(self):
        """The trained modules in eval mode for a measurement between steps (``camera_gap``),
        and a compiled U-Net run eagerly: with static shapes, another batch would compile (and
        with ``compile_graphs`` capture) a second graph at every checkpoint."""
        stance = "force_eager" if self.compiled else "default"
        for m in self.modules.values():
            m.eval()
        try:
            with torch.compiler.set_stance(stance):
                yield
        finally:
            for m in self.modules.values():
                m.train()

    @torch.no_grad()
    def use_ema(self) -> None:
        """Load the EMA weights into the prior (what is saved and sampled)."""
        for p, e in zip(self.params, self.ema, strict=True):
            p.copy_(e)
        for m in self.modules.values():
            m.requires_grad_(False)
            m.eval()

    def save(self, directory: str | Path, dtype: torch.dtype = torch.float16) -> None:
        """Write the EMA weights of the trained modules into the teacher directory (``dtype``),
        without touching the weights being trained (so it can checkpoint mid-run)."""
        import copy

        directory = Path(directory)
        ema = iter(self.ema)
        for name, module in self.modules.items():
            out = copy.deepcopy(module)
            with torch.no_grad():
                for p in out.parameters():
                    p.copy_(next(ema))
            # safetensors stores contiguous tensors: undo channels-last first.
            out = out.to(dtype=dtype, memory_format=torch.contiguous_format)
            out.save_pretrained(directory / SUBFOLDERS.get(name, name))

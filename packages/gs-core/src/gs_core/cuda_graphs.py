"""Replaying inference as recorded CUDA graphs.

At batch 1 a network of a few hundred small kernels is bound by the host launching them, not by
the GPU running them. :class:`GraphedCallable` records ``fn(*tensors)`` once per input
signature (shapes, dtypes, device, autocast and grad mode, ``module.training``, the addresses of
``module``'s parameters and buffers; the list of those is refreshed whenever any module
registers a parameter, buffer or submodule) as a CUDA graph and afterwards replays it: one launch for
the whole call.

Only for code without host synchronisation or data-dependent shapes (no ``.item()``, no
``nonzero``), and for inference: the graph holds no autograd state. Inputs are copied into
static buffers and outputs are cloned out of the graph's memory, so results stay valid after
the next call. A parameter moved or replaced (``module.to(...)``, a new ``nn.Parameter``) gives a
new signature and a new recording, never a replay over freed memory; in-place updates
(``load_state_dict``, optimiser steps) are seen by the next replay.

:class:`GraphedFunction` does the same for a training step's forward and backward: both are
recorded (one memory pool) and replayed inside an autograd function, so gradients reach the
inputs that require grad; the differentiable mesh renderer's graphed form is built on it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from gs_core.errors import GS3DError, ValidationError

Tree = Any  # a Tensor, or a tuple / list / dict (str keys) of trees

# Walking a module for its parameters costs about a millisecond for a few hundred modules, as
# much as the GPU work of a small stage; so the tensors are listed once and listed again only
# after some module, anywhere, registered a parameter, buffer or submodule (counted here).
_registrations = [0]


def _count_registration(*args: Any) -> None:
    # torch.compile traces through modules built inside a forward (diffusers' mid blocks and
    # LGM's slice a ModuleList on every call): a global mutated there becomes a guard that fails
    # on the next call, so dynamo recompiled every call until its limit (measured on an H200,
    # 2026-12-03: GECO's VAE decoder 2.2 s per call compiled against 51 ms eager). Modules built
    # while compiling are temporaries that no graphed callable holds.
    if torch.compiler.is_compiling():
        return
    _registrations[0] += 1


torch.nn.modules.module.register_module_parameter_registration_hook(_count_registration)
torch.nn.modules.module.register_module_buffer_registration_hook(_count_registration)
torch.nn.modules.module.register_module_module_registration_hook(_count_registration)


def _flatten(tree: Tree, leaves: list[torch.Tensor]) -> Any:
    """Tensors of ``tree`` appended to ``leaves``; returns a spec to rebuild it."""
    if isinstance(tree, torch.Tensor):
        leaves.append(tree)
        return None
    if isinstance(tree, (tuple, list)):
        return (type(tree), [_flatten(t, leaves) for t in tree])
    if isinstance(tree, dict):
        return (dict, [(k, _flatten(v, leaves)) for k, v in tree.items()])
    raise ValidationError(
        "GraphedCallable output", "tensors in tuples, lists or dicts", type(tree).__name__
    )


def _unflatten(spec: Any, leaves: list[torch.Tensor], pos: list[int]) -> Tree:
    if spec is None:
        pos[0] += 1
        return leaves[pos[0] - 1]
    kind, items = spec
    if kind is dict:
        return {k: _unflatten(s, leaves, pos) for k, s in items}
    return kind(_unflatten(s, leaves, pos) for s in items)


class _Recording:
    def __init__(self, fn: Callable[..., Tree], args: tuple[torch.Tensor, ...], warmup: int):
        device = args[0].device
        self.inputs = [a.detach().clone() for a in args]
        # Warm-up on a side stream, outside the capture: lazy initialisation (cuBLAS handles,
        # Triton compilation, cached constants) must not happen while recording.
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn(*self.inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
            out = fn(*self.inputs)
        self.outputs: list[torch.Tensor] = []
        self.spec = _flatten(out, self.outputs)

    def replay(self, args: tuple[torch.Tensor, ...]) -> Tree:
        for static, a in zip(self.inputs, args, strict=True):
            static.copy_(a)
        self.graph.replay()
        return _unflatten(self.spec, [o.clone() for o in self.outputs], [0])


class GraphedCallable:
    """``GraphedCallable(fn, module)(*tensors)`` == ``fn(*tensors)``, replayed from a CUDA graph.

    Args:
        fn: takes CUDA tensors (all on one device) and returns a tensor or a tuple / list /
            dict of tensors.
        module: the ``nn.Module`` whose parameters ``fn`` reads (part of the signature).
        warmup: eager calls before recording.
        max_recordings: signatures kept (least recently used dropped first); each holds its
            own memory pool.
    """

    def __init__(
        self,
        fn: Callable[..., Tree],
        module: nn.Module | None = None,
        warmup: int = 2,
        max_recordings: int = 4,
    ):
        self.fn = fn
        self.module = module
        self.warmup = warmup
        self.max_recordings = max_recordings
        self._recordings: OrderedDict[tuple, _Recording] = OrderedDict()
        self._tensors: list[torch.Tensor] = []
        self._listed_at = -1

    def _module_tensors(self) -> list[torch.Tensor]:
        if self._listed_at != _registrations[0]:
            self._tensors = [*self.module.parameters(), *self.module.buffers()]
            self._listed_at = _registrations[0]
        return self._tensors

    def _signature(self, args: tuple[torch.Tensor, ...]) -> tuple:
        device = args[0].device
        sig: list[Any] = [
            tuple((tuple(a.shape), a.dtype, a.device, a.stride()) for a in args),
            torch.is_grad_enabled(),
            torch.is_autocast_enabled(device.type),
            torch.get_autocast_dtype(device.type),
        ]
        if self.module is not None:
            sig.append(self.module.training)
            sig.append(tuple(map(torch.Tensor.data_ptr, self._module_tensors())))
        return tuple(sig)

    def __call__(self, *args: torch.Tensor) -> Tree:
        if not args or not all(isinstance(a, torch.Tensor) for a in args):
            raise ValidationError("GraphedCallable arguments", "one or more tensors", repr(args))
        device = args[0].device
        if device.type != "cuda" or any(a.device != device for a in args):
            raise ValidationError(
                "GraphedCallable arguments",
                "tensors on one CUDA device",
                ", ".join(str(a.device) for a in args),
            )
        key = self._signature(args)
        rec = self._recordings.get(key)
        if rec is None:
            rec = _Recording(self.fn, args, self.warmup)
            self._recordings[key] = rec
            while len(self._recordings) > self.max_recordings:
                self._recordings.popitem(last=False)
        else:
            self._recordings.move_to_end(key)
        return rec.replay(args)

    def clear(self) -> None:
        """Drop every recording and its memory."""
        self._recordings.clear()


# ---------------------------------------------------------------------------- with autograd


class _TrainingRecording:
    """One signature of a :class:`GraphedFunction`: a forward graph, and a backward graph
    from the outputs that require grad to the inputs that do, sharing one memory pool."""

    def __init__(self, fn: Callable[..., Tree], args: tuple[torch.Tensor, ...], warmup: int):
        device = args[0].device
        self.inputs = [a.detach().clone().requires_grad_(a.requires_grad) for a in args]
        self.needs = [i for i, a in enumerate(self.inputs) if a.requires_grad]
        wanted = [self.inputs[i] for i in self.needs]
        # Warm-up and both captures on one side stream (the backward's kernels run on the
        # streams of their forward ones); lazy initialisation happens in the warm-up.
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                leaves: list[torch.Tensor] = []
                _flatten(fn(*self.inputs), leaves)
                diff = [o for o in leaves if o.requires_grad]
                if diff:
                    torch.autograd.grad(
                        diff, wanted, [torch.ones_like(o) for o in diff], allow_unused=True
                    )
        torch.cuda.synchronize(device)
        pool = torch.cuda.graph_pool_handle()
        self.forward_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.forward_graph, pool=pool, stream=stream):
            out = fn(*self.inputs)
        self.outputs: list[torch.Tensor] = []
        self.spec = _flatten(out, self.outputs)
        self.diff = [i for i, o in enumerate(self.outputs) if o.requires_grad]
        self.grad_outputs = [torch.empty_like(self.outputs[i]) for i in self.diff]
        self.backward_graph = torch.cuda.CUDAGraph()
        self.grads: list[torch.Tensor | None] = [None] * len(self.needs)
        if self.diff:
            with torch.cuda.graph(self.backward_graph, pool=pool, stream=stream):
                self.grads = list(
                    torch.autograd.grad(
                        [self.outputs[i] for i in self.diff],
                        wanted,
                        self.grad_outputs,
                        allow_unused=True,
                    )
                )
        # Counts forward replays: a backward must belong to the latest one, whose activations
        # the graph's memory holds.
        self.generation = 0


class _Replay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rec: _TrainingRecording, *args: torch.Tensor):
        for static, a in zip(rec.inputs, args, strict=True):
            if static.data_ptr() != a.data_ptr():
                static.copy_(a)
        rec.forward_graph.replay()
        rec.generation += 1
        ctx.rec, ctx.generation = rec, rec.generation
        outs = tuple(o.detach().clone() for o in rec.outputs)
        ctx.mark_non_differentiable(*(o for i, o in enumerate(outs) if i not in rec.diff))
        return outs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: torch.Tensor):
        rec: _TrainingRecording = ctx.rec
        if ctx.generation != rec.generation:
            raise GS3DError(
                "GraphedFunction: backward of an earlier call after a later forward; the graph "
                "keeps the activations of its latest call only (back-propagate each call before "
                "the next)"
            )
        for buf, i in zip(rec.grad_outputs, rec.diff, strict=True):
            buf.copy_(grads[i])
        rec.backward_graph.replay()
        out: list[torch.Tensor | None] = [None] * len(rec.inputs)
        for i, g in zip(rec.needs, rec.grads, strict=True):
            out[i] = None if g is None else g.clone()
        return (None, *out)


class GraphedFunction:
    """``GraphedFunction(fn)(*tensors)`` == ``fn(*tensors)`` with autograd: the forward and the
    backward are each replayed from a CUDA graph, for training steps whose shapes do not change.

    Recorded once per input signature (shapes, dtypes, strides, device, which inputs require
    grad, grad and autocast mode). With grad disabled, or no input requiring grad, it records
    the forward only, as :class:`GraphedCallable`. Outputs are copies (valid after the next
    call) and so are the gradients; the gradients reach the inputs that require grad, through
    the outputs that do. ``fn`` must be free of host synchronisation and data-dependent shapes,
    and read every changing tensor from its arguments (other tensors it reads are baked into
    the graph by address). Each call must be back-propagated before the next call's forward
    (the graph holds the activations of the latest one); otherwise backward raises.

    Args:
        fn: takes CUDA tensors (one device) and returns a tensor or a tuple / list / dict of
            tensors.
        warmup: eager forward + backward passes before recording.
        max_recordings: signatures kept (least recently used dropped first); each holds its
            own memory pool.
    """

    def __init__(self, fn: Callable[..., Tree], warmup: int = 2, max_recordings: int = 4):
        self.fn = fn
        self.warmup = warmup
        self.max_recordings = max_recordings
        self._recordings: OrderedDict[tuple, _TrainingRecording | _Recording] = OrderedDict()

    def __call__(self, *args: torch.Tensor) -> Tree:
        if not args or not all(isinstance(a, torch.Tensor) for a in args):
            raise ValidationError("GraphedFunction arguments", "one or more tensors", repr(args))
        device = args[0].device
        if device.type != "cuda" or any(a.device != device for a in args):
            raise ValidationError(
                "GraphedFunction arguments",
                "tensors on one CUDA device",
                ", ".join(str(a.device) for a in args),
            )
        train = torch.is_grad_enabled() and any(a.requires_grad for a in args)
        key = (
            tuple((tuple(a.shape), a.dtype, a.stride(), a.requires_grad) for a in args),
            device,
            train,
            torch.is_autocast_enabled(device.type),
            torch.get_autocast_dtype(device.type),
        )
        rec = self._recordings.get(key)
        if rec is None:
            rec = (
                _TrainingRecording(self.fn, args, self.warmup)
                if train
                else _Recording(self.fn, args, self.warmup)
            )
            self._recordings[key] = rec
            while len(self._recordings) > self.max_recordings:
                self._recordings.popitem(last=False)
        else:
            self._recordings.move_to_end(key)
        if not train:
            return rec.replay(args)
        outs = _Replay.apply(rec, *args)
        return _unflatten(rec.spec, list(outs), [0])

    def clear(self) -> None:
        """Drop every recording and its memory."""
        self._recordings.clear()


__all__ = ["GraphedCallable", "GraphedFunction"]

"""The contract between a method's training stage and the engine: :class:`TrainingModule`."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import Dataset, default_collate

from gs_core.errors import GS3DError
from gs_core.training.config import TrainerConfig

OptimizerEntry = torch.optim.Optimizer | tuple[torch.optim.Optimizer, LRScheduler | None]


class TrainingModule(nn.Module, abc.ABC):
    """One training stage of a method. The engine (:class:`~gs_core.training.Trainer`) owns the loop.

    Hold the networks being trained as sub-modules (attributes) and keep frozen networks (a
    teacher, a loss network) with ``requires_grad=False``. ``config`` is the object the default
    :meth:`loss_weights` reads ``lambda_*`` fields from (usually the method's config).

    Required: :meth:`trainer_config`, :meth:`configure_optimizers`, :meth:`training_step`.
    Everything else has a working default. Do not override ``forward``: under DDP the engine
    calls the module itself, and ``forward`` dispatches to :meth:`training_step` so that the
    gradient synchronisation hooks see every parameter used in the step.
    """

    def __init__(self, config: Any = None):
        super().__init__()
        self.config = config

    # ------------------------------------------------------------------ required
    @abc.abstractmethod
    def trainer_config(self) -> TrainerConfig:
        """The engine settings of this stage (steps, batch size, precision, EMA, clipping...)."""

    @abc.abstractmethod
    def configure_optimizers(self) -> Mapping[str, OptimizerEntry]:
        """``{name: optimizer}`` or ``{name: (optimizer, lr_scheduler)}``; called once, after the
        module is on its device. Param groups (per-group lr, weight decay) live in the optimiser;
        a scheduler is stepped once after each step of its optimiser."""

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> Mapping[str, torch.Tensor]:
        """Named scalar loss terms for ``batch`` at ``step`` (0-based optimiser step).

        The engine adds them up weighted by :meth:`loss_weights`, logs each one separately,
        and back-propagates. Every process must return the same names at a given step.
        """

    # ------------------------------------------------------------------ optional
    def train_dataset(self) -> Dataset | None:
        """A map-style dataset of training samples, or ``None`` when the step makes its own data
        (``batch`` is then ``None``)."""
        return None

    def collate(self, samples: list[Any]) -> Any:
        """Turn a list of samples into a batch (default: ``torch.utils.data.default_collate``)."""
        return default_collate(samples)

    def loss_weights(self, step: int) -> Mapping[str, float]:
        """Weight of each term: ``lambda_<term>`` fields of ``self.config`` (threestudio style).

        Override for curricula (weights that change with ``step``). A weight of 0 logs the term
        without training on it.
        """
        cfg = self.config
        if cfg is None:
            return {}
        fields = getattr(type(cfg), "model_fields", None)
        names = (
            list(fields) if fields is not None else [n for n in vars(cfg) if not n.startswith("_")]
        )
        return {
            n[len("lambda_") :]: float(getattr(cfg, n)) for n in names if n.startswith("lambda_")
        }

    def optimizers_to_step(self, step: int) -> Iterable[str] | None:
        """Names of the optimisers stepped at ``step`` (``None``: all). Alternating updates (a
        generator and a critic taking turns) return one name per step; gradients of all
        parameters are cleared before every step."""
        return None

    def models(self) -> dict[str, nn.Module]:
        """The networks a checkpoint stores (via ``save_pretrained`` when they have it).

        Default: every direct sub-module holding a parameter with ``requires_grad``. Every
        optimised parameter must live in one of them.
        """
        return {
            name: child
            for name, child in self.named_children()
            if any(p.requires_grad for p in child.parameters())
        }

    def load_model_state(self, name: str, state: dict[str, torch.Tensor]) -> None:
        """Load checkpointed weights into ``models()[name]``. Override when parameter shapes
        change during training (densification): resize the parameters, then re-point the
        optimiser's param groups at them, before the engine loads the optimiser state."""
        self.models()[name].load_state_dict(state, strict=True)

    def validation_step(self, step: int) -> Mapping[str, Any] | Sequence[Any] | None:
        """Pictures (and numbers) to look at progress, run on the main process without grad.

        Return a sequence of images (``[H, W, C]`` in [0, 1], numpy or tensor, or one tensor
        ``[N, H, W, C]``) for one contact sheet, or ``{name: images}`` for one sheet per name;
        plain numbers in the mapping are logged as ``val/<name>``. ``None``: nothing to save.
        """
        return None

    def on_after_backward(self, step: int) -> None:
        """Gradients of the whole step are accumulated (and, under fp16, still loss-scaled)."""

    def on_step_end(self, step: int) -> None:
        """After the optimiser step that ended step ``step - 1``; ``step`` steps are done."""

    def training_state(self) -> dict[str, Any]:
        """Extra state to checkpoint (curriculum position, densification statistics...):
        tensors, numbers, strings, lists and dicts."""
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`training_state` returned."""
        if state:
            raise GS3DError(
                f"{type(self).__name__}: the checkpoint holds training_state keys {sorted(state)[:5]} "
                "but load_training_state() is not overridden to restore them"
            )

    def forward(self, batch: Any, step: int) -> Mapping[str, torch.Tensor]:
        return self.training_step(batch, step)


__all__ = ["OptimizerEntry", "TrainingModule"]

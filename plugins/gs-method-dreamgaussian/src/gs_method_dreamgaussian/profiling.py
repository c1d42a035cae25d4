"""Where the time of a run goes, measured only when asked (``generate(..., profile=True)``):
each section synchronises CUDA at its ends, which costs the overlap of host and device that an
unprofiled run keeps."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from gs_core.method import timed


class Profile:
    """Seconds per named section, accumulated over a run (``sections``); a no-op when off."""

    def __init__(self, enabled: bool, device: torch.device):
        self.enabled = enabled
        self.device = device
        self.sections: dict[str, float] = {}

    def __call__(self, name: str) -> AbstractContextManager:
        if not self.enabled:
            return nullcontext()
        return timed(self.sections, name, self.device)

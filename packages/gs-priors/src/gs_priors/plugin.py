"""gs-priors' contribution to the plugin registry: Stable Diffusion, Zero123, Zero123++ and
ImageDream as named priors.

Each factory is the prior's ``from_pretrained(model_id_or_path, device=..., dtype=..., ...)``.
Registering imports neither diffusers nor transformers; a prior loads them when it is built.
"""

from __future__ import annotations

from collections.abc import Callable

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import PriorSpec
from gs_priors import imagedream as idream
from gs_priors import stable_diffusion as sd
from gs_priors import zero123 as z123
from gs_priors import zero123plus as zpp


@hookimpl
def gs3d_register_priors(register: Callable[[PriorSpec], None]) -> None:
    register(
        PriorSpec(
            name="stable-diffusion",
            summary="Stable Diffusion text-to-image latent diffusion (text guidance)",
            factory=sd.StableDiffusionGuidance.from_pretrained,
            default_model_id=sd.DEFAULT_MODEL_ID,
            paper="Rombach et al. 2022, High-Resolution Image Synthesis with Latent Diffusion Models",
        )
    )
    register(
        PriorSpec(
            name="zero123",
            summary=(
                "Zero123 / Stable Zero123 novel-view diffusion (image + relative camera guidance); "
                "a hub id containing 'stable' selects Stable Zero123's camera embedding"
            ),
            factory=z123.Zero123Guidance.from_pretrained,
            default_model_id=z123.DEFAULT_MODEL_ID,
            paper="Liu et al. 2023, Zero-1-to-3: Zero-shot One Image to 3D Object",
        )
    )
    register(
        PriorSpec(
            name="zero123plus",
            summary=(
                "Zero123++ v1.1 / v1.2 six-view diffusion (3x2 grid, reference attention); "
                "a hub id containing '1.2' selects v1.2's cameras"
            ),
            factory=zpp.Zero123PlusGuidance.from_pretrained,
            default_model_id=zpp.DEFAULT_MODEL_ID,
            paper="Shi et al. 2023, Zero123++: a Single Image to Consistent Multi-view Diffusion Base Model",
        )
    )
    register(
        PriorSpec(
            name="imagedream",
            summary=(
                "ImageDream multi-view diffusion: four orthogonal 256 px views of an input image "
                "(+ optional text)"
            ),
            factory=idream.ImageDreamGuidance.from_pretrained,
            default_model_id=idream.DEFAULT_MODEL_ID,
            paper="Wang & Shi 2023, ImageDream: Image-Prompt Multi-view Diffusion for 3D Generation",
        )
    )

"""gs3d plugin hooks: registers the ``compress3d`` method (no bundled weights yet)."""

from __future__ import annotations

from gs_core.plugins.hookspecs import hookimpl
from gs_core.plugins.specs import MethodSpec, StageSpec
from gs_method_compress3d.config import Compress3DConfig

# Sec. 3 trains three stages in order; "encoders" comes first only offline, where the
# procedural contrastive encoders stand in for OpenShape / OpenCLIP (the paper's are pretrained).
STAGE_SPECS = (
    StageSpec(
        "encoders",
        "procedural contrastive image and shape encoders (offline stand-in for OpenCLIP / "
        "OpenShape; a no-op for embeddings.kind='openshape')",
    ),
    StageSpec(
        "autoencoder",
        "triplane VAE with 3D-aware cross-attention and FlexiCubes decoding on RGB, mask, depth "
        "and KL (Eq. 12)",
        init_from="encoders",
    ),
    StageSpec(
        "prior",
        "diffusion prior image embedding -> shape embedding (x0-prediction, L1, Eq. 13)",
        init_from="autoencoder",
    ),
    StageSpec(
        "diffusion",
        "triplane latent diffusion conditioned on shape and image embeddings (Eq. 14)",
        init_from="prior",
    ),
)


@hookimpl
def gs3d_register_methods(register):
    register(
        MethodSpec(
            name="compress3d",
            summary="Compress3D: triplane VAE latent diffusion conditioned on image and prior "
            "shape embeddings, decoded by FlexiCubes to a coloured mesh (+ Gaussians on it).",
            config_class=Compress3DConfig,
            method_class="gs_method_compress3d.model:Compress3D",
            core_api="1.1",
            paper="Zhang et al., Compress3D: a Compressed Latent Space for 3D Generation from a "
            "Single Image, ECCV 2024 (arXiv:2403.13524)",
            # Trained on world-space objects (y up, the input camera wherever it was): the
            # generated mesh lives in the world frame of the training data.
            output_frame="world",
            stages=STAGE_SPECS,
            has_weights=True,
        )
    )

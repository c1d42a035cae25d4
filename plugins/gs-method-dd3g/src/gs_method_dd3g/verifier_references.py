"""The verifier's encoding of every quadruple's input image, made once per training run.

Implicit verification (Eq. 5) conditions the teacher on the input image II of each object at
every step: ImageDream's image-prompt tokens (CLIP features through its resampler), those of
zeros for the unconditional branch, the empty prompt's text embeddings and the image's VAE
latent. Of these only the latent is random (a posterior sample); the rest is the same for an
image at every step, and recomputing it (a tokenizer on the host, two text-encoder passes,
the image encoder and the VAE encoder) was about a third of the verifier's operations per
step. :class:`VerifierReferences` keeps the deterministic parts and the VAE posterior's
moments of every quadruple image, and draws a fresh latent per call, as ``encode_reference``
does.
"""

from __future__ import annotations

import torch

from gs_core.errors import ValidationError


class VerifierReferences:
    """ImageDream references of ``images [Q, 4, H, W]`` (uint8 RGBA, a
    :class:`~gs_method_dd3g.quadruples.QuadrupleSet`'s inputs), encoded once by ``teacher``
    (an ``ImageDreamGuidance``) in chunks of ``chunk``.

    ``reference(index)`` gives what ``teacher.encode_reference(images[index] / 255)`` gives,
    with the same draw of the global (or ``generator``'s) random numbers for the latent.

    ``rows_per_image``: consecutive rows that hold one image (``generate_quadruples``'
    ``per_image``); each image is encoded once and its rows share the encoding.
    """

    def __init__(self, teacher, images: torch.Tensor, chunk: int = 64, rows_per_image: int = 1):
        if images.ndim != 4 or images.shape[1] != 4 or images.dtype != torch.uint8:
            raise ValidationError(
                "VerifierReferences images",
                "uint8 RGBA [Q, 4, H, W]",
                f"{images.dtype} {tuple(images.shape)}",
            )
        k = int(rows_per_image)
        if k > 1:
            groups = images.reshape(-1, k, *images.shape[1:]) if images.shape[0] % k == 0 else None
            if groups is None or not torch.equal(groups, groups[:, :1].expand_as(groups)):
                raise ValidationError(
                    "VerifierReferences images",
                    f"each image in {k} consecutive rows (rows_per_image={k})",
                    f"{images.shape[0]} rows that are not",
                )
            images = groups[:, 0]
        self.rows_per_image = k
        self.teacher = teacher
        device = teacher.device
        tokens, moments = [], []
        shared = None
        with torch.no_grad():
            for start in range(0, images.shape[0], chunk):
                x = images[start : start + chunk].to(device).float() / 255.0
                # A placeholder latent: the VAE runs below, for the moments rather than a sample.
                ref = teacher.encode_reference(x, input_latents=torch.zeros(x.shape[0], 1))
                tokens.append(ref.image_tokens)
                if shared is None:
                    # The empty prompt's embeddings and the tokens of zeros: one row serves all.
                    shared = ref
                encoder = teacher.vae.encode(teacher.encoder_input(x))
                moments.append(encoder.latent_dist.parameters)
        self.image_tokens = torch.cat(tokens)
        self.moments = torch.cat(moments)
        self._shared = {
            "text_embeddings": shared.text_embeddings[:1],
            "null_text_embeddings": shared.null_text_embeddings[:1],
            "null_image_tokens": shared.null_image_tokens[:1],
        }
        self._type = type(shared)

    def __len__(self) -> int:
        """Rows, as in the images given."""
        return self.image_tokens.shape[0] * self.rows_per_image

    def reference(self, index: torch.Tensor, generator: torch.Generator | None = None):
        """The ``ImageDreamReference`` of rows ``index [B]``, with a fresh posterior sample."""
        index = index.to(self.image_tokens.device) // self.rows_per_image
        b = index.shape[0]
        latents = self.teacher.latents_from_moments(self.moments[index], generator)
        return self._type(
            **{k: v.expand(b, *v.shape[1:]) for k, v in self._shared.items()},
            image_tokens=self.image_tokens[index],
            input_latents=latents,
        )


__all__ = ["VerifierReferences"]

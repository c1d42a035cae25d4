"""Stage 2: a textured mesh from the Gaussians, its texture refined (main.py's ``save_model``
then main2.py, 50 steps).

Extraction goes through gs-core's meshing (density grid, marching cubes, cleaning, decimation),
UVs through xatlas, and the first texture is baked from renders of the Gaussians at the 26
official views. Then the texture logits (geometry frozen, ``train_geo: False``) are optimised
with Adam (lr 0.2); each step (``r = step / steps``) draws

* the input view at ``reference_size x ssaa``, resized back, against the input where the mesh
  covers the pixel and faces the camera (view cosine > 0.5): masked MSE;
* one novel view (stage 1's sampling) at ``render_resolution x ssaa``, resized back, against
  its Zero123 refinement, upsampled to the render size: MSE. The refinement is
  :func:`gs_priors.samplers.refine`: the render's VAE latent (posterior sample) noised to the
  timestep at index ``int(50 x strength)`` of a 50-step DDIM schedule, ``strength = 0.8 +
  0.15 r`` (t = 181 -> 41), denoised over the remaining 10 -> 3 steps with guidance 5, decoded.
  On CUDA the guided U-Net call replays one CUDA graph for every step of every refinement.

``ssaa = clip(2 U[0, 1], 0.125, 2)`` is drawn for each render; sides are rounded up to
multiples of 8. All randomness comes from the global generator, which the caller seeds.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from gs_core.cameras import Cameras
from gs_core.gaussians import Gaussians
from gs_core.mesh import Mesh
from gs_method_dreamgaussian.cameras import bake_cameras, reference_camera, sample_novel_views
from gs_method_dreamgaussian.config import DreamGaussianConfig, Stage2Config
from gs_method_dreamgaussian.profiling import Profile
from gs_method_dreamgaussian.schedules import refine_strength
from gs_method_dreamgaussian.stage1 import InputView
from gs_method_dreamgaussian.texture_render import WeldedMesh, render_textured


def remesh_face_count(mesh: Mesh, edge: float) -> int:
    """Faces of an isotropic remeshing of ``mesh`` at target edge ``edge``: its area over the
    area of an equilateral triangle of that edge."""
    v = mesh.vertices.detach().double()[mesh.faces.long()]
    area = 0.5 * torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=-1).norm(dim=-1)
    return max(4, math.ceil(float(area.sum()) / (math.sqrt(3) / 4 * edge**2)))


def extract_mesh(
    cfg: DreamGaussianConfig, gaussians: Gaussians, profile: Profile | None = None
) -> Mesh:
    """The UV-mapped mesh of ``gaussians [N]`` with its baked ``texture [T, T, 3]``."""
    from gs_core.meshing import bake_texture, decimate, gaussians_to_mesh, unwrap_uv
    from gs_core.meshing.clean import drop_bad_faces

    s2 = cfg.stage2
    device = gaussians.device
    prof = profile or Profile(False, device)
    with prof("mesh_extract"):
        # Texels no baking view sees fall back to colours from the Gaussians inside
        # bake_texture, so the mesh needs no vertex colours of its own.
        mesh = gaussians_to_mesh(
            gaussians,
            resolution=s2.grid_resolution,
            level=s2.density_level,
            faces=s2.max_faces,
            min_opacity=s2.min_opacity,
            colors=False,
        )
        if s2.remesh_edge is not None:
            target = remesh_face_count(mesh, s2.remesh_edge)
            if target < mesh.num_faces:
                mesh = drop_bad_faces(decimate(mesh, target))
    with prof("uv_unwrap"):
        mesh = unwrap_uv(mesh, pieces=s2.uv_pieces)
    with prof("bake"):
        mesh = bake_texture(
            mesh,
            gaussians,
            size=s2.texture_size,
            views=bake_cameras(cfg.camera, s2.bake_resolution, device),
            min_cosine=s2.bake_min_cosine,
            backend=cfg.backend,
        )
    return mesh


def _render_size(size: int, ssaa: float) -> int:
    """mesh_renderer.py's ``make_divisible(size x ssaa, 8)``."""
    return max(8, int(math.ceil(size * ssaa / 8) * 8))


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x [C, H, W, K]`` to ``size``: bilinear when shrinking, bilinear with aligned corners
    when growing (mesh_renderer.py's ``scale_img_nhwc``)."""
    if x.shape[1] == size:
        return x
    y = x.permute(0, 3, 1, 2)
    if x.shape[1] > size:
        y = F.interpolate(y, (size, size), mode="bilinear", align_corners=False)
    else:
        y = F.interpolate(y, (size, size), mode="bilinear", align_corners=True)
    return y.permute(0, 2, 3, 1)


def _ssaa(cfg: Stage2Config) -> float:
    lo, hi = cfg.ssaa_range
    return min(hi, max(lo, 2.0 * float(torch.rand(()))))


def refine_texture(
    cfg: DreamGaussianConfig,
    mesh: Mesh,
    view: InputView,
    *,
    guidance: Any,
    reference: Any,
    profile: Profile | None = None,
) -> Mesh:
    """``mesh`` with its texture optimised for ``cfg.stage2.steps`` steps (see the module
    docstring); vertices, faces and UVs are unchanged."""
    s2, cam = cfg.stage2, cfg.camera
    device = mesh.vertices.device
    prof = profile or Profile(False, device)
    geom = WeldedMesh.from_mesh(mesh)
    logits = torch.logit(mesh.texture.detach().float().clamp(1e-6, 1 - 1e-6))
    logits = torch.nn.Parameter(logits.contiguous())
    optimizer = torch.optim.Adam([logits], lr=s2.texture_lr)
    target = view.rgb[0].permute(1, 2, 0)[None]  # [1, S, S, 3]
    ref_size = cam.reference_size
    denoiser = None
    if s2.lambda_refine > 0:
        from gs_priors.samplers import GuidedDenoiser, refine

        # One denoiser for every refinement: on CUDA its graph is recorded once.
        graphed = cfg.prior.cuda_graph and device.type == "cuda"
        first = guidance.prior.camera_condition(reference, 0.0, 0.0)
        denoiser = GuidedDenoiser(guidance.prior, first, s2.refine_guidance_scale, 1, graphed)

    for step in range(1, s2.steps + 1):
        r = min(1.0, step / s2.steps)
        loss = torch.zeros((), device=device)
        if s2.lambda_reference > 0:
            size = _render_size(ref_size, _ssaa(s2))
            with prof("mesh_render"):
                rgb, alpha, viewcos = render_textured(
                    geom, logits, reference_camera(cam, size, device), mip=s2.mip
                )
            rgb, alpha, viewcos = (_resize(x, ref_size) for x in (rgb, alpha, viewcos))
            valid = ((alpha > 0) & (viewcos > s2.reference_min_cosine)).to(rgb.dtype).detach()
            loss = loss + s2.lambda_reference * F.mse_loss(rgb * valid, target * valid)
        if s2.lambda_refine > 0:
            views = sample_novel_views(cam, 1)
            out = s2.render_resolution
            size = _render_size(out, _ssaa(s2))
            cams: Cameras = views.cameras(cam, size, device)
            with prof("mesh_render"):
                rgb, _, _ = render_textured(geom, logits, cams, mip=s2.mip)
            images = _resize(rgb, out).permute(0, 3, 1, 2)  # [1, 3, out, out]
            cond = guidance.prior.camera_condition(
                reference,
                views.d_elevation,
                views.d_azimuth,
                0.0,
                reference_elevation=cam.input_elevation_deg,
            )
            with prof("refine"), torch.no_grad():
                latents = guidance.model.encode_images(images.detach())
                result = refine(
                    guidance.prior,
                    latents,
                    cond,
                    strength=refine_strength(s2, r),
                    steps=s2.refine_steps,
                    denoiser=denoiser,
                )
                refined = guidance.model.decode_latents(result.latents)
            refined = F.interpolate(
                refined.float(), (out, out), mode="bilinear", align_corners=False
            )
            loss = loss + s2.lambda_refine * F.mse_loss(images, refined)
        with prof("texture_backward"):
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    texture = torch.sigmoid(logits.detach()).to(mesh.vertices.dtype)
    return Mesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        vertex_colors=mesh.vertex_colors,
        uvs=mesh.uvs,
        texture=texture,
    )

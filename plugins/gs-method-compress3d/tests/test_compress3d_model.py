"""Conformance and end-to-end behaviour of the tiny Compress3D method."""

from __future__ import annotations

import pytest
import torch

from gs_core.errors import ValidationError
from gs_core.mesh import Mesh
from gs_core.testing import MethodConformanceTests, tiny_rgba_images
from gs_method_compress3d.config import Compress3DConfig
from gs_method_compress3d.model import Compress3D


class TestCompress3DConformance(MethodConformanceTests):
    method = "compress3d"


def tiny(**overrides) -> Compress3D:
    torch.manual_seed(0)
    return Compress3D(Compress3DConfig.preset("tiny", **overrides)).eval()


def test_generate_returns_coloured_mesh_and_gaussians_on_it():
    model = tiny()
    out = model.generate(tiny_rgba_images(2, 32), seed=3)
    assert out.meshes is not None and len(out.meshes) == 2
    assert out.gaussians.batch_shape == (2,)
    assert out.gaussians.num_gaussians == model.config.gaussians_per_mesh
    for b, mesh in enumerate(out.meshes):
        assert isinstance(mesh, Mesh) and mesh.faces.shape[0] > 0
        assert mesh.vertex_colors is not None and mesh.vertex_colors.shape == mesh.vertices.shape
        # the Gaussians lie on the mesh: inside its bounding box
        lo, hi = mesh.vertices.min(0).values, mesh.vertices.max(0).values
        means = out.gaussians.means[b]
        assert bool(((means >= lo - 1e-4) & (means <= hi + 1e-4)).all())
    for key in ("prior", "unet", "decode", "flexicubes", "gaussians"):
        assert out.timings[key] >= 0


def test_a_half_precision_model_generates_a_float32_mesh_and_gaussians():
    # Networks in bf16, geometry (triplane sampling points, FlexiCubes) in float32.
    model = tiny().to(dtype=torch.bfloat16)
    out = model.generate(tiny_rgba_images(2, 32), seed=3)
    assert out.gaussians.means.dtype == torch.float32 and out.gaussians.means.shape[0] == 2
    assert len(out.meshes) == 2 and all(m.vertices.dtype == torch.float32 for m in out.meshes)
    assert out.extras["latent"].dtype == torch.bfloat16


def test_seeds_change_the_sample_and_repeat_exactly():
    model = tiny()
    images = tiny_rgba_images(1, 32)
    a = model.generate(images, seed=1).extras["latent"]
    b = model.generate(images, seed=1).extras["latent"]
    c = model.generate(images, seed=2).extras["latent"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_without_prior_uses_the_null_shape_embedding():
    model = tiny()
    out = model.generate(tiny_rgba_images(1, 32), seed=0, use_prior=False)
    torch.testing.assert_close(out.extras["shape_embedding"][0], model.unet.null_shape)
    with_prior = model.generate(tiny_rgba_images(1, 32), seed=0)
    assert not torch.equal(with_prior.extras["shape_embedding"], out.extras["shape_embedding"])


def test_generate_rejects_unknown_keywords_and_bad_images():
    model = tiny()
    with pytest.raises(ValidationError, match="use_prior"):
        model.generate(tiny_rgba_images(1, 32), seed=0, strength=3)
    with pytest.raises(ValidationError, match="images"):
        model.generate(torch.rand(1, 3, 32, 32), seed=0)


def test_paper_embedders_fail_clearly_without_weights(offline_hub):
    from gs_core.errors import WeightsNotFoundError

    cfg = Compress3DConfig.preset("tiny", embeddings={"kind": "openshape", "dim": 16})
    model = Compress3D(cfg).eval()
    assert model.encoders is None
    with pytest.raises(WeightsNotFoundError, match="ViT-bigG-14"):
        model.generate(tiny_rgba_images(1, 32), seed=0)
    with pytest.raises(WeightsNotFoundError, match="openshape"):
        model.shape_embedding(torch.rand(1, 64, 3), torch.rand(1, 64, 3))


def test_paper_embedding_width_is_the_encoders():
    from gs_encoders.clip import clip_embed_dim
    from gs_encoders.openshape import OpenShapeConfig

    emb = Compress3DConfig.preset("paper").embeddings
    assert emb.kind == "openshape" and emb.dim == 1280
    assert clip_embed_dim(emb.clip_model) == OpenShapeConfig().out_dim == emb.dim
    assert (emb.shape_scale, emb.image_scale) == (0.25, 0.85)


def test_config_consistency_errors_name_the_field():
    from gs_core.errors import GS3DError

    with pytest.raises(GS3DError, match="volume_resolution"):
        Compress3DConfig.preset("tiny", encoder={"volume_resolution": 24})
    with pytest.raises(GS3DError, match="drop"):
        Compress3DConfig.preset("tiny", unet={"drop_image": 0.6, "drop_shape": 0.6})


def test_external_paper_encoders_are_used_and_kept_out_of_the_state():
    from gs_encoders.openshape import OpenShapeConfig, OpenShapeEncoder

    torch.manual_seed(0)
    shape_encoder = OpenShapeEncoder(OpenShapeConfig.preset("tiny")).eval()  # 24-d
    cfg = Compress3DConfig.preset(
        "tiny",
        embeddings={"kind": "openshape", "dim": 24, "shape_scale": 0.25},
        unet={"context_tokens": 2},
    )
    model = Compress3D(cfg).eval()
    model.set_external_encoders(shape=shape_encoder)
    # OpenShape resamples each cloud at random: clouds of one repeated coloured point are
    # unchanged by it, so the embedding can be compared exactly
    xyz = torch.rand(2, 1, 3).expand(2, 64, 3)
    rgb = torch.rand(2, 1, 3).expand(2, 64, 3)
    e = model.shape_embedding(xyz, rgb)
    assert e.shape == (2, 24) and model.encoders is None
    torch.testing.assert_close(e, cfg.embeddings.shape_scale * shape_encoder.encode(xyz, rgb))
    assert not any(k.startswith(("ppat.", "proj.")) for k in model.state_dict())


@pytest.mark.parametrize("query", ["surface_points", "vertices"])
def test_colours_come_from_the_colour_head_where_the_config_says(query):
    """'surface_points' (the paper's colour MLP at the mesh's surface points): the losses'
    renders are the head at each pixel's surface point and the Gaussians' colours the head at
    their centres; 'vertices': both interpolate the vertex colours."""
    from gs_core.cameras import Cameras
    from gs_core.gaussians import sh0_to_rgb
    from gs_core.rendering.mesh_render import render_mesh
    from gs_method_compress3d.losses import render_shapes

    model = tiny(decoder={"color_query": query})
    with torch.no_grad():
        out = model.generate(tiny_rgba_images(1, 32), seed=0)
        shape = model.autoencoder.extract(model.autoencoder.decode(out.extras["latent"]))[0]
        assert (shape.surface_color is not None) == (query == "surface_points")
        cams = Cameras.orbit([30, 200], 20, radius=2.0, width=32, height=32)
        batch = Cameras(viewmats=cams.viewmats[None], Ks=cams.Ks[None], width=32, height=32)
        r = render_shapes([shape], batch, background=1.0)
        assert (r["alpha"] > 0.5).sum() > 20
        planes = model.autoencoder.decode(out.extras["latent"])[0]

        def head(p):
            return model.autoencoder.surface_colors(planes, p)

        deferred = render_mesh(shape.mesh, cams, background=1.0, surface_color=head).rgb
        by_vertex = render_mesh(shape.mesh, cams, background=1.0).rgb
        assert (deferred - by_vertex).abs().max() > 1e-3  # the two modes do differ here
        want = deferred if query == "surface_points" else by_vertex
        torch.testing.assert_close(r["rgb"][0], want, atol=1e-5, rtol=0)
        g = out.gaussians
        rgb = sh0_to_rgb(g.sh[0, :, 0])
        at_centres = head(g.means[0])
        close = torch.allclose(rgb, at_centres, atol=1e-4)
        assert close == (query == "surface_points")


def conditioned(model: Compress3D) -> Compress3D:
    """The UNet's zero-initialised outputs (LDM's init) made non-zero, identically for every
    model, so that its branches differ and the guidance scales matter."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.unet.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return model


def test_guidance_scales_per_call_equal_the_configured_ones():
    """``generate(guidance=(s_s, s_p))`` (Table 5's sweep) samples exactly as a model configured
    with those scales, and differs from the default (1, 5)."""
    images = tiny_rgba_images(1, 32)
    swept = conditioned(tiny()).generate(images, seed=4, guidance=(3.0, 10.0)).extras["latent"]
    configured = conditioned(tiny(unet={"guidance_shape": 3.0, "guidance_image": 10.0}))
    want = configured.generate(images, seed=4).extras["latent"]
    torch.testing.assert_close(swept, want, rtol=0, atol=0)
    default = conditioned(tiny()).generate(images, seed=4).extras["latent"]
    assert not torch.equal(swept, default)
    with pytest.raises(ValidationError, match="guidance"):
        tiny().generate(images, seed=4, guidance=(1.0,))
    with pytest.raises(ValidationError, match="guidance"):
        tiny().generate(images, seed=4, guidance="strong")


@pytest.mark.gpu
def test_cuda_graphs_read_the_guidance_scales_at_every_call():
    model = conditioned(tiny()).cuda()
    images = tiny_rgba_images(1, 32).cuda()
    for guidance in ((1.0, 5.0), (3.0, 10.0)):
        graphed = model.generate(images, seed=2, guidance=guidance, cuda_graph=True)
        eager = model.generate(images, seed=2, guidance=guidance, cuda_graph=False)
        torch.testing.assert_close(
            graphed.extras["latent"], eager.extras["latent"], rtol=1e-4, atol=1e-4
        )


def test_texture_size_bakes_the_colour_head_into_the_exported_mesh():
    """``decoder.texture_size``: generated meshes carry UVs and a texture of the colour head at
    texel density; rendered, the texture agrees with the head at each pixel's surface point."""
    from gs_core.cameras import Cameras
    from gs_core.rendering.mesh_render import render_mesh

    model = conditioned(tiny(decoder={"texture_size": 64}))
    with torch.no_grad():
        out = model.generate(tiny_rgba_images(1, 32), seed=0)
        mesh = out.meshes[0]
        assert mesh.texture is not None and mesh.texture.shape == (64, 64, 3)
        assert mesh.uvs is not None and out.timings["texture"] >= 0
        planes = model.autoencoder.decode(out.extras["latent"])[0]

        def head(p):
            return model.autoencoder.surface_colors(planes, p)

        cams = Cameras.orbit([30, 200], 20, radius=2.0, width=32, height=32)
        tex = render_mesh(mesh, cams, background=1.0, antialias=False, mip=False)
        ref = render_mesh(mesh, cams, background=1.0, antialias=False, surface_color=head)
        inside = ref.alpha[..., 0] > 0.5
        assert inside.sum() > 20
        assert (tex.rgb[inside] - ref.rgb[inside]).abs().mean() < 0.05
    plain = tiny().generate(tiny_rgba_images(1, 32), seed=0)
    assert plain.meshes[0].texture is None and "texture" not in plain.timings

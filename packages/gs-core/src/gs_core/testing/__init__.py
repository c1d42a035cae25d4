"""Test helpers for gs3d and for plugin authors.

``MethodConformanceTests`` is the conformance suite every method plugin runs in its own CI::

    from gs_core.testing import MethodConformanceTests

    class TestMyMethod(MethodConformanceTests):
        method = "my-method"          # the registered method name

It checks the ``MethodSpec`` (presets ``paper`` and ``tiny``, the method class, output frame,
stages, ``has_weights``), that ``generate`` on the ``tiny`` preset returns valid Gaussians and is
reproducible with ``seed=``, that ``gs_core.loading.load_method(name, preset="tiny")`` builds it,
and that ``save_pretrained`` -> ``from_pretrained`` / ``load_method(checkpoint=...)`` reproduces
its outputs exactly.

``assert_block_trains(module, inputs, shape)`` checks a network block's output shape and that its
backward reaches every parameter and input with finite gradients.

The pytest plugin (auto-loaded through the ``pytest11`` entry point) registers the ``gpu``
marker and skips tests carrying it when CUDA is not available, and provides the ``offline_hub``
fixture (the Hugging Face hub offline, its cache empty).
"""

from gs_core.testing.conformance import MethodConformanceTests, tiny_rgba_images
from gs_core.testing.gradients import assert_block_trains
from gs_core.testing.scripts import load_script

__all__ = ["MethodConformanceTests", "assert_block_trains", "load_script", "tiny_rgba_images"]

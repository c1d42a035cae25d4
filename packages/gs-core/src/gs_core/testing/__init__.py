"""Test helpers for gs3d and for plugin authors.

``MethodConformanceTests`` is the conformance suite every method plugin runs in its own CI::

    from gs_core.testing import MethodConformanceTests

    class TestMyMethod(MethodConformanceTests):
        method = "my-method"          # the registered method name

The pytest plugin (auto-loaded through the ``pytest11`` entry point) registers the ``gpu``
marker and skips tests carrying it when CUDA is not available.
"""

from gs_core.testing.conformance import MethodConformanceTests, tiny_rgba_images

__all__ = ["MethodConformanceTests", "tiny_rgba_images"]

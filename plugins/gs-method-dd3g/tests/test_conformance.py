"""The method-plugin conformance suite of gs-core on the ``tiny`` preset."""

from __future__ import annotations

from gs_core.testing import MethodConformanceTests


class TestDD3G(MethodConformanceTests):
    method = "dd3g"

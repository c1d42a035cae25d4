"""The method-plugin conformance suite of gs-core on the ``tiny`` preset."""

from __future__ import annotations

import pytest

from gs_core.testing import MethodConformanceTests

# The tiny preset guides with gs_priors' random tiny Zero123, and says so on every run.
pytestmark = pytest.mark.filterwarnings("ignore:dreamgaussian. prior.source='tiny_random'")


class TestDreamGaussian(MethodConformanceTests):
    method = "dreamgaussian"

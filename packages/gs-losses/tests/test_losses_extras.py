"""``import gs_losses`` without the ``guidance`` extra, and the one error that names it."""

from __future__ import annotations

import subprocess
import sys


def test_plain_install_imports_without_gs_priors():
    code = (
        "import sys\n"
        "sys.modules['gs_priors'] = None  # as when gs-losses[guidance] is not installed\n"
        "import gs_losses\n"
        "from gs_losses import chamfer_distance, rgba_loss, ssim, weighted_sum\n"
        "from gs_core.errors import GS3DError\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'peft', 'lpips') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "try:\n"
        "    gs_losses.SDS\n"
        "except GS3DError as e:\n"
        "    assert \"pip install 'gs-losses[guidance]'\" in str(e), e\n"
        "else:\n"
        "    raise AssertionError('gs_losses.SDS without gs-priors must raise GS3DError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_guidance_imports_no_diffusers():
    code = (
        "import sys\n"
        "from gs_losses import SDS, VSD, SDSConfig, VSDConfig\n"
        "heavy = [m for m in ('diffusers', 'transformers', 'peft') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""The integration tests' helpers in isolated.py that do not build environments."""

from __future__ import annotations

import pytest
from isolated import run


def test_run_reports_a_failure_with_both_streams_unless_told_not_to():
    failing = ["bash", "-c", "echo out; echo err >&2; exit 7"]
    assert run(failing, check_rc=False).returncode == 7
    with pytest.raises(AssertionError, match=r"command failed \(7\)[\s\S]*out[\s\S]*err"):
        run(failing)

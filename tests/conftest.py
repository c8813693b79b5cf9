"""Suite-wide set-up: the test helpers on the path, the skip policy, and the tool checks.

Tests marked ``qemu`` are checked before they run: without the reference QEMU 7.2 they fail
with one line saying what to install (the skip policy turns any other skip into a failure).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skip_policy  # noqa: E402
from support import require_qemu, require_toolchain  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("skip_policy"):
        config.pluginmanager.register(skip_policy, "skip_policy")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # before the skipif markers are evaluated, so a missing QEMU fails instead of skipping
    if item.get_closest_marker("qemu") is not None:
        require_qemu()


@pytest.fixture
def toolchain() -> None:
    """The RISC-V cross toolchain (``support.needs_toolchain`` uses this)."""
    require_toolchain()

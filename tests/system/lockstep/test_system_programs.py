"""Random system programs (sysprog.py) agree on rvh and QEMU 7.2, instruction by instruction:
privilege changes, delegation, paging with upper-half mappings, traps and xRETs at every level,
software interrupts, loops and self-modifying code, the H extension's instructions and CSRs."""

from __future__ import annotations

import os

import pytest
from campaign import CampaignStats, campaign_settings, diff_image
from hypothesis import given
from strategies import system_batches
from sysprog import build_system_batch

from rvh.diff import qemu_available

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed"),
]

EXAMPLES = int(os.environ.get("RVH_SYSFUZZ_EXAMPLES", "60"))
MIN_PROGRAMS = int(os.environ.get("RVH_SYSFUZZ_MIN_PROGRAMS", "100"))
stats = CampaignStats("system programs")


def run_system_batch(hypervisor, programs, *, context=12):
    """Build and compare: (result, report, image)."""
    image = build_system_batch(programs, hypervisor)
    return (*diff_image(image, hypervisor, context=context), image)


@campaign_settings(EXAMPLES)
@given(batch=system_batches())
def test_system_programs_agree_with_qemu(batch):
    hypervisor, programs = batch
    result, report, image = run_system_batch(hypervisor, programs)
    broken = stats.record(programs, result, image)
    assert result.ok, f"H={'on' if hypervisor else 'off'}\n{report}"
    assert not broken, "deviation rules outside their budget:\n" + "\n".join(broken)


def test_system_campaign_size_and_rules():
    """Runs after the campaign (file order): distinct programs counted, rules within budget."""
    if stats.batches == 0:
        pytest.fail("the system campaign did not run in this session (run the whole file)")
    print(stats.report())
    assert stats.distinct >= MIN_PROGRAMS, stats.report()

"""Random system programs (sysprog.py) agree on rvh and QEMU 7.2, instruction by instruction:
privilege changes, delegation, paging with upper-half mappings, traps and xRETs at every level,
software interrupts, loops and self-modifying code, the H extension's instructions and CSRs.
Each deviation rule may fire only on the instruction classes rule_budget.py declares for it.

The campaign would have caught the upper-half xRET bug (commit f1cb854): the slow test puts it
back in a copy of the package and checks that the upper-half programs diverge at the xRET.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from campaign import CampaignStats, campaign_settings, diff_image
from hypothesis import given
from strategies import system_batches
from sysprog import build_system_batch, upper_half_programs

from rvh.diff import qemu_available

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed"),
]

# hypothesis draws constants from the project's modules, so the batches move with any change
# to them: 14 examples keep the distinct programs above the floor with room to spare
EXAMPLES = int(os.environ.get("RVH_SYSFUZZ_EXAMPLES", "14"))
MIN_PROGRAMS = int(os.environ.get("RVH_SYSFUZZ_MIN_PROGRAMS", "15"))
stats = CampaignStats("system programs")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


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
    """Runs after the campaign (file order): enough distinct programs, the rule table shown."""
    if stats.batches == 0:
        pytest.fail("the system campaign did not run in this session (run the whole file)")
    print("\n" + stats.report())
    assert stats.distinct >= MIN_PROGRAMS, stats.report()
    assert not stats.broken


@pytest.mark.parametrize("hypervisor", [False, True], ids=["h-off", "h-on"])
def test_upper_half_programs_agree_with_qemu(hypervisor):
    result, report, _ = run_system_batch(hypervisor, upper_half_programs(hypervisor))
    assert result.ok, report
    assert result.instructions > 500, report


# The bug f1cb854 fixed: execute_system returned "no jump" as -1 and tested for it with
# `target >= 0`, so an xRET to an address with bit 63 set fell through to the next instruction.
# execute_privileged now returns the next pc itself; the bug is put back by making each xRET
# ignore a negative target the way the old test did.
XRET_FIXED = (
    "return np.int64(OK), mret(state, machine)",
    "return np.int64(OK), sret(state, machine)",
)


def _xret_bug(fixed: str) -> str:
    call = fixed.removeprefix("return np.int64(OK), ")
    return f"target = {call}\n        return np.int64(OK), target if target >= 0 else npc"


REVERTED_RUN = """
import json, sys
from campaign import diff_image
from sysprog import build_system_batch, upper_half_programs
result, report = diff_image(build_system_batch(upper_half_programs(), False), False)
d = result.divergence
print(json.dumps({"ok": result.ok, "report": report,
                  "disassembly": d and d.disassembly, "pc": d and d.pc, "index": d and d.index}))
"""


def revert_xret_fix(package: Path) -> None:
    """Put the upper-half xRET bug back into a copy of rvh: fail loudly if the fix moved."""
    core = package / "rvh" / "cpu" / "core.py"
    text = core.read_text()
    for fixed in XRET_FIXED:
        if text.count(fixed) != 1:
            pytest.fail(
                f"rvh/cpu/core.py no longer holds {fixed!r} exactly once: the kernel changed, "
                "update this test's patch to put the upper-half xRET bug back"
            )
        text = text.replace(fixed, _xret_bug(fixed))
    core.write_text(text)


@pytest.mark.slow
def test_campaign_catches_the_upper_half_xret_bug(tmp_path):
    """With the old 'no jump' test (any negative target), an mret/sret to 0xffffffff8xxxxxxx
    falls through; the upper-half programs must diverge at that xRET."""
    package = tmp_path / "reverted"
    shutil.copytree(ROOT / "rvh", package / "rvh", ignore=shutil.ignore_patterns("__pycache__"))
    revert_xret_fix(package)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(package), str(HERE)])
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    env["RVH_CACHE_DIR"] = str(tmp_path / "cache")
    run = subprocess.run(
        [sys.executable, "-c", REVERTED_RUN],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert not outcome["ok"], "the campaign missed the upper-half xRET bug:\n" + outcome["report"]
    assert outcome["disassembly"].split()[0] in ("mret", "sret"), outcome["report"]
    # and the same programs agree with QEMU on this tree (the fix in place)
    assert run_system_batch(False, upper_half_programs())[0].ok

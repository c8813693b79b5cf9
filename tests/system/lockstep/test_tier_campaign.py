"""The random campaigns (M-mode programs, and system programs) with the translating tier on
(``--tier jit``, rvh/tier).

The lockstep comparison with QEMU 7.2 needs a traced run, and a traced kernel call never uses
the tier, so the tier is checked at the end of each batch instead: the batch runs untraced on
the interpreter and on the tier, and the two must end the same (instruction count,
every hart slot, all of memory).  The batch is also compared with QEMU in lockstep on the
interpreter, as in test_random_programs.py, so the tier's end state is QEMU's; where no
deviation rule fired, the tier's registers at the end are also checked against QEMU's last
state directly.

The campaign's programs are straight-line code run once, and the tier translates only what is
already decoded (a block never holds an instruction that never ran), so the tier's machine
starts with the decode cache the interpreter's run left, each entry kept only where it is what
decoding the fresh image gives (the same instruction bits at that host offset), and translates
a block at its first entry (threshold 1, compiled before the next kernel call): the batch then
runs translated wherever a block can start, at every taken branch and jump target.
``RVH_TIER_FUZZ_EXAMPLES`` and ``RVH_TIER_SYSFUZZ_EXAMPLES`` set the numbers of batches
(tools/fuzz runs more from its seed).  The system programs' batches are compared the same way,
with QEMU through the lockstep run only (no direct check of its last state yet).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from campaign import campaign_settings, counters, diff_image
from hypothesis import given
from randprog import build_batch, elf_image
from strategies import batches, system_batches
from support import TIER_NOT_COMPARED
from sysprog import build_system_batch

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.diff import diff_elf, format_report, qemu_available, run_qemu
from rvh.machine import Machine
from rvh.tier.engine import Tier

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed"),
]

# each batch compiles its blocks one by one, at their first entry: about 25 s a batch on a
# loaded machine, so CI runs a few
EXAMPLES = int(os.environ.get("RVH_TIER_FUZZ_EXAMPLES", "6"))
SYSTEM_EXAMPLES = int(os.environ.get("RVH_TIER_SYSFUZZ_EXAMPLES", "4"))
translated = counters(
    "tier campaign", "instructions", "batches", "system instructions", "system batches"
)


def prime(machine: Machine, decoded: np.ndarray) -> int:
    """Give ``machine`` (freshly loaded) the entries of another run's decode cache that hold
    the instruction its memory holds at their host offset, flagging their pages as code as
    decoding them would; returns how many."""
    entries = decoded.reshape(-1, L.DC_FIELDS)
    target = machine.bus.decode_cache.reshape(-1, L.DC_FIELDS)
    memory = machine.bus.memory
    kept = 0
    for index in np.nonzero(entries[:, L.DC_TAG] >= 0)[0]:
        host, length = int(entries[index, L.DC_TAG]), int(entries[index, L.DC_LENGTH])
        bits = int(entries[index, L.DC_BITS]) & ((1 << (8 * length)) - 1)
        if int.from_bytes(memory[host : host + length].tobytes(), "little") != bits:
            continue
        target[index] = entries[index]
        machine.bus.page_flags[host >> L.PAGE_SHIFT] |= L.PAGE_FLAG_CODE
        machine.bus.page_flags[(host + length - 1) >> L.PAGE_SHIFT] |= L.PAGE_FLAG_CODE
        kept += 1
    return kept


def run_untraced(
    path: str, hypervisor: bool, decoded: np.ndarray | None = None
) -> tuple[Machine, Tier | None]:
    """The batch on the interpreter, or with ``decoded`` (a decode cache to start from) on
    the tier."""
    extensions = "acimsu" + ("h" if hypervisor else "")
    config = MachineConfig(memory=256 << 20, extensions=extensions, max_instructions=400_000)
    machine = Machine(config, output=lambda _: None)
    jit = None
    if decoded is not None:
        jit = Tier(
            machine.bus.decode_cache,
            machine.machine,
            machine.bus.page_flags,
            threshold=1,
            synchronous=True,
        )
        machine.tier = jit
        for hart in machine.harts:
            hart.tier = jit
    machine.load(path)
    if decoded is not None:
        assert prime(machine, decoded) > 0
    result = machine.run_sync()
    assert result.reason == "test device: pass", result.reason
    return machine, jit


def assert_same_end(jit: Machine, interp: Machine) -> np.ndarray:
    """The two untraced runs end the same; the tier's hart state."""
    state, expected = jit.harts[0].state.copy(), interp.harts[0].state.copy()
    state[TIER_NOT_COMPARED] = expected[TIER_NOT_COMPARED] = 0
    assert jit.instructions == interp.instructions
    differing = [int(i) for i in np.nonzero(state != expected)[0]]
    assert not differing, f"hart slots {differing} differ: jit {state[differing]}"
    assert np.array_equal(jit.bus.memory, interp.bus.memory)
    return state


@campaign_settings(EXAMPLES)
@given(batch=batches())
def test_random_programs_end_the_same_on_the_tier(batch):
    hypervisor, programs = batch
    with tempfile.TemporaryDirectory(prefix="rvh-tier-fuzz-") as tmp:
        path = os.path.join(tmp, "batch.elf")
        with open(path, "wb") as out:
            out.write(elf_image(build_batch(programs)))
        reference = run_qemu(path, hypervisor=hypervisor, max_instructions=200_000, timeout=60)
        assert not reference.truncated, "a random batch did not finish on QEMU"
        lockstep = diff_elf(path, reference.trace, hypervisor=hypervisor)
        assert lockstep.ok, format_report(lockstep)
        interp, _ = run_untraced(path, hypervisor)
        jit, tier = run_untraced(path, hypervisor, interp.bus.decode_cache.copy())
    assert tier is not None
    state = assert_same_end(jit, interp)
    if not lockstep.deviations:
        # nothing adopted from QEMU: its last state's registers are the tier's (the batch's
        # last instruction, the store to the test device, changes none)
        last = reference.trace.state(len(reference.trace) - 1)
        registers = [int(state[r]) & (2**64 - 1) for r in range(1, 32)]
        assert registers == [last[f"x{r}"] for r in range(1, 32)]
    translated["instructions"] += tier.statistics()["instructions"]
    translated["batches"] += 1


@campaign_settings(SYSTEM_EXAMPLES)
@given(batch=system_batches())
def test_system_programs_end_the_same_on_the_tier(batch):
    """The system programs (privilege changes, paging with upper-half aliases, H, xRETs,
    interrupts, self-modifying code with fence.i): in lockstep with QEMU on the interpreter,
    then untraced on both tiers."""
    hypervisor, programs = batch
    image = build_system_batch(programs, hypervisor)
    with tempfile.TemporaryDirectory(prefix="rvh-tier-sysfuzz-") as tmp:
        path = os.path.join(tmp, "batch.elf")
        with open(path, "wb") as out:
            out.write(elf_image(image))
        interp, _ = run_untraced(path, hypervisor)
        jit, tier = run_untraced(path, hypervisor, interp.bus.decode_cache.copy())
    assert tier is not None
    # the tiers first: a batch that meets one of the system campaign's open divergences from
    # QEMU (docs/testing.md) still checks the tier
    assert_same_end(jit, interp)
    translated["system instructions"] += tier.statistics()["instructions"]
    translated["system batches"] += 1
    lockstep, report = diff_image(image, hypervisor)
    assert lockstep.ok, report


def test_the_tier_campaign_ran_translated_code():
    """Runs after the campaign (file order): the tier ran a share of the batches' code."""
    if translated["batches"] + translated["system batches"] == 0:
        pytest.fail("the tier campaign did not run in this session (run the whole file)")
    print(f"\ntier campaign: {translated}")
    # blocks start at taken branches and jumps and end at the first instruction outside
    # RV64IM: 25 derandomized batches ran 1,882 instructions translated (tools/fuzz's shards
    # may run the system batches alone)
    if translated["batches"]:
        assert translated["instructions"] > 20 * translated["batches"]

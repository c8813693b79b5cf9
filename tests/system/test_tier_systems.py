"""The translating tier (--tier jit, rvh/tier) on whole systems: the hypervisor's VMs in each
mode, and Linux, end exactly as on the interpreter.

Each run happens twice, on the interpreter and on the tier, and the two must agree on the
console output, the exit status and reason, the instruction count, every slot of every hart
(but the few that record how the kernel got somewhere: tests/cpu/test_tier.py) and all of
memory.  The VMs run their guests in VS-mode under the HS-mode hypervisor (hw), or in U-mode
with the hypervisor emulating S-mode (trap, pv), so translated blocks run at every privilege
level, with V on and off, under satp, vsatp and hgatp, and in address spaces that the
hypervisor switches between VMs; their timers and the hypervisor's scheduling interrupts land
at the same instruction on both tiers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from support import GUESTS, TIER_NOT_COMPARED

from rvh.boot import BuiltinSbiBoot, FirmwareBoot, HypervisorBoot
from rvh.config import MachineConfig
from rvh.hyp import GuestSpec, host_memory_needed
from rvh.machine import Machine, RunResult
from rvh.tier.engine import DEFAULT_THRESHOLD, Tier

SMODE, SMODE_PV, HYP = GUESTS / "smode", GUESTS / "smode-pv", GUESTS / "hyp"


def run_on(
    tier: str, make: Callable[[bytearray], Machine], threshold: int, synchronous: bool
) -> tuple[Machine, RunResult, bytes, Tier | None]:
    output = bytearray()
    machine = make(output)
    jit = None
    if tier == "jit":
        # synchronous: compiled in the kernel's thread, so that a block hot at one kernel return
        # runs compiled from the next and short runs translate what they can; else in the
        # worker thread, as --tier jit does (results do not depend on when blocks install)
        jit = Tier(
            machine.bus.decode_cache,
            machine.machine,
            machine.bus.page_flags,
            threshold=threshold,
            synchronous=synchronous,
        )
        machine.tier = jit
        for hart in machine.harts:
            hart.tier = jit
    result = machine.run_sync()
    return machine, result, bytes(output), jit


def assert_same_on_both_tiers(
    make: Callable[[bytearray], Machine], threshold: int = 8, synchronous: bool = True
) -> Tier:
    interp, expected, interp_output, _ = run_on("interp", make, threshold, synchronous)
    jit, result, jit_output, tier = run_on("jit", make, threshold, synchronous)
    assert jit_output == interp_output
    assert (result.status, result.reason, result.instructions) == (
        expected.status,
        expected.reason,
        expected.instructions,
    )
    for mine, theirs in zip(jit.harts, interp.harts, strict=True):
        state, expected = mine.state.copy(), theirs.state.copy()
        state[TIER_NOT_COMPARED] = expected[TIER_NOT_COMPARED] = 0
        differing = [int(i) for i in np.nonzero(state != expected)[0]]
        assert not differing, f"hart {mine.hartid}: slots {differing} differ"
    assert np.array_equal(jit.bus.memory, interp.bus.memory)
    assert tier is not None and tier.statistics()["instructions"] > 0
    return tier


def vms(*specs_text: str) -> Callable[[bytearray], Machine]:
    def make(output: bytearray) -> Machine:
        specs = [GuestSpec.parse(text) for text in specs_text]
        memory = max(host_memory_needed(specs), 512 << 20)
        config = MachineConfig(memory=memory, max_instructions=400_000_000)
        machine = Machine(config, output.extend)
        machine.boot(HypervisorBoot(specs))
        return machine

    return make


@pytest.mark.parametrize("mode", ["hw", "trap", "pv"])
@pytest.mark.parametrize("name", ["sv39", "umode", "timer"])
def test_a_vm_runs_the_same_on_both_tiers(name, mode):
    directory = SMODE_PV if mode == "pv" else SMODE
    tier = assert_same_on_both_tiers(vms(f"{directory / name}.elf,mem=256M,virt={mode}"))
    assert tier.statistics()["blocks_compiled"] > 10


@pytest.mark.parametrize("mode", ["hw", "trap"])
def test_an_smp_vm_runs_the_same_on_both_tiers(mode):
    assert_same_on_both_tiers(vms(f"{SMODE / 'smp.elf'},mem=256M,vcpus=2,virt={mode}"))


@pytest.mark.parametrize("mode", ["hw", "trap", "pv"])
def test_a_hostile_vm_beside_two_others_runs_the_same_on_both_tiers(mode):
    # the hostile VM's wild accesses fault precisely in translated code too, and the
    # hypervisor switches between three address spaces
    other = "trap" if mode == "hw" else "hw"
    hostile = GUESTS / "hyp-pv" if mode == "pv" else HYP
    assert_same_on_both_tiers(
        vms(
            f"{HYP / 'victim.elf'},virt={other}",
            f"{hostile / 'hostile.elf'},virt={mode}",
            str(SMODE / "hello.elf"),
        )
    )


def test_the_hypervisors_own_guests_run_the_same_on_both_tiers():
    assert_same_on_both_tiers(
        vms(
            f"{HYP / 'shadow.elf'},virt=trap",
            f"{HYP / 'pvcalls.elf'},virt=pv",
            f"{HYP / 'spin.elf'},virt=hw",
        )
    )


OPENSBI = Path("/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin")


@pytest.mark.slow
@pytest.mark.parametrize(("firmware", "harts"), [("builtin", 1), ("opensbi", 2)])
def test_linux_boots_the_same_on_both_tiers(firmware, harts):
    """Debian's kernel and the busybox initramfs to power-off (2 G instructions), on the
    built-in SBI with one hart and on OpenSBI with two; the disk's completions at virtual
    times, so that the boot repeats instruction for instruction."""

    def make(output: bytearray) -> Machine:
        linux = GUESTS / "linux"
        image, initrd = linux / "Image", linux / "initramfs.cpio"
        for path in (image, initrd, *([OPENSBI] if firmware == "opensbi" else [])):
            if not path.exists():
                pytest.fail(f"{path} missing: run make guests (guests/linux)", pytrace=False)
        config = MachineConfig(
            harts=harts,
            max_instructions=5_000_000_000,
            bootargs="console=ttyS0",
            rtc_base_ns=1_740_830_400 * 10**9,
            io_timing="virtual",
        )
        machine = Machine(config, output.extend)
        if firmware == "opensbi":
            machine.boot(FirmwareBoot(str(OPENSBI), str(image), str(initrd)))
        else:
            machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
        return machine

    # as rvh run --tier jit does it: the default threshold, compiling in the worker thread
    tier = assert_same_on_both_tiers(make, threshold=DEFAULT_THRESHOLD, synchronous=False)
    stats = tier.statistics()
    assert stats["blocks_compiled"] > 100
    assert stats["flushes"] == 0  # writes over code drop their pages' blocks only

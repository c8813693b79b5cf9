"""Instructions retired per privilege level (M, HS, VS, VU, U) and the hypervisor's
instructions per VM exit, on guests whose counts can be computed.

guests/bench/overhead/priv's syscall benchmark runs exactly 3 * 1000 + 1 instructions in
U-mode (per ecall: li a7, addi, bnez retire; the ecall itself traps and does not; then the
final li a7, 1), natively in U and as a VM in VU.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import GUESTS, ROOT

from rvh.boot import BuiltinSbiBoot, HypervisorBoot
from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.hyp import GuestSpec, host_memory_needed, vm_vmid
from rvh.machine import Machine

PRIV = GUESTS / "bench" / "overhead" / "priv.elf"
SMODE_HELLO = GUESTS / "smode" / "hello.elf"
U_INSTRUCTIONS = 3 * 1000 + 1


def run_native(elf=PRIV) -> Machine:
    machine = Machine(MachineConfig(), output=lambda data: None)
    machine.boot(BuiltinSbiBoot(str(elf)))
    assert machine.run_sync().status == 0
    return machine


def run_hw(elf=PRIV) -> tuple[Machine, bytes]:
    spec = GuestSpec.parse(f"{elf},virt=hw")
    output = bytearray()
    config = MachineConfig(memory=max(MachineConfig.memory, host_memory_needed([spec])))
    machine = Machine(config, output=output.extend)
    machine.boot(HypervisorBoot([spec]))
    assert machine.run_sync().status == 0
    return machine, bytes(output)


def test_native_s_guest_with_u_code_exact_counts():
    machine = run_native()
    levels = machine.retired_by_level()
    assert levels["U"] == U_INSTRUCTIONS
    assert levels["M"] == 0  # the built-in SBI is Python: no M-mode instruction runs
    assert levels["VS"] == levels["VU"] == 0
    assert levels["HS"] > 1_000_000
    assert sum(levels.values()) == machine.instructions
    assert machine.hypervisor_by_vmid() == {0: levels["HS"]}  # no VM ever ran


def test_bare_machine_mode_program_is_all_m():
    machine = Machine(MachineConfig(), output=lambda data: None)
    machine.load(str(GUESTS / "isa" / "rv64i.elf"))
    assert machine.run_sync().status == 0
    levels = machine.retired_by_level()
    assert levels == {"M": machine.instructions, "HS": 0, "VS": 0, "VU": 0, "U": 0}
    assert levels["M"] > 100


def test_hw_vm_counts_vs_vu_and_hypervisor():
    machine, output = run_hw()
    levels = machine.retired_by_level()
    assert levels["VU"] == U_INSTRUCTIONS
    assert levels["U"] == 0 and levels["M"] == 0
    assert levels["VS"] > 1_000_000
    assert sum(levels.values()) == machine.instructions
    by_vmid = machine.hypervisor_by_vmid()
    assert sum(by_vmid.values()) == levels["HS"]
    assert set(by_vmid) == {0, vm_vmid(0)}  # the hypervisor's boot, then VM 0's exits
    assert b"PASS overhead/priv" in output


def test_counts_are_deterministic():
    first, _ = run_hw()
    second, _ = run_hw()
    assert first.retired_by_level() == second.retired_by_level()
    assert first.hypervisor_by_vmid() == second.hypervisor_by_vmid()


def test_counters_live_in_the_state_array():
    machine = run_native()
    hart = machine.harts[0]
    saved = hart.state.copy()  # a snapshot is the state array: the counters go with it
    hart.state[L.RETIRED_BY_LEVEL : L.RETIRED_BY_LEVEL + 5] = 0
    hart.state[L.LEVEL_MARK] = 0
    assert hart.retired_by_level()["HS"] == hart.instret  # all uncredited: the current level
    hart.state[:] = saved
    assert hart.retired_by_level()["U"] == U_INSTRUCTIONS


def test_sbi_round_trip_costs_at_most_300_hypervisor_instructions():
    """The SBI benchmark's region, natively and as a VM: the difference per call is the
    hypervisor's round trip (VS ecall to the guest's next instruction), minus the ecall,
    which retires natively (the built-in SBI's) and traps in a VM."""
    from rvh.bench.overhead import RunKey, run_key

    native = {r.bench: r for r in run_key(RunKey("priv", "native")).rows}
    hw = {r.bench: r for r in run_key(RunKey("priv", "hw")).rows}
    round_trip = hw["sbi"].value - native["sbi"].value + 1
    assert 50 < round_trip <= 300
    assert hw["sbi"].exits == 1.0


@pytest.mark.slow
def test_stats_prints_levels_and_hypervisor_per_exit():
    result = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", "--hyp", "--guest", str(PRIV), "--stats"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    (levels,) = [line for line in lines if line.startswith("retired by level:")]
    counts = dict(part.split() for part in levels.split(":", 1)[1].split(","))
    assert list(counts) == ["M", "HS", "VS", "VU", "U"]
    assert int(counts["VU"]) == U_INSTRUCTIONS
    (total,) = [line for line in lines if line.startswith("instructions retired:")]
    assert sum(map(int, counts.values())) == int(total.split(":")[1])
    (hyp,) = [line for line in lines if line.startswith("  hypervisor:")]
    assert "HS instructions" in hyp and "per exit" in hyp
    per_exit = float(hyp.split(",")[1].split()[0])
    assert 0 < per_exit <= 400


def test_two_vms_each_get_their_hypervisor_share():
    specs = [GuestSpec.parse(f"{PRIV},virt=hw"), GuestSpec.parse(f"{SMODE_HELLO},virt=hw")]
    config = MachineConfig(memory=max(MachineConfig.memory, host_memory_needed(specs)))
    machine = Machine(config, output=lambda data: None)
    machine.boot(HypervisorBoot(specs))
    assert machine.run_sync().status == 0
    levels = machine.retired_by_level()
    by_vmid = machine.hypervisor_by_vmid()
    assert set(by_vmid) == {0, vm_vmid(0), vm_vmid(1)}
    assert sum(by_vmid.values()) == levels["HS"]
    assert levels["VU"] == U_INSTRUCTIONS  # only the priv guest runs U code
    # the priv guest's 2000 SBI and MMIO exits outweigh hello's console
    assert by_vmid[vm_vmid(0)] > 10 * by_vmid[vm_vmid(1)] > 0

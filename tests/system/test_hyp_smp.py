"""The rvh hypervisor on several host harts (``rvh run --hyp --smp N``; firmware/hyp/smp.c).

The same VMs on one host hart and on two print the same; an hw VM's two vCPUs run on both host
harts (the emulator's count of guest instructions on each hart, and the hypervisor's count of
slices on each); a trap VM's two vCPUs share its home hart; the counts are the same run to run
(rvh interleaves its harts in a fixed order, so even the lock's hand-overs repeat); the hostile
guest stays contained; and the same runs on QEMU 7.2 with two harts, where they really are
parallel.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from test_hyp_guests import (
    FW_JUMP,
    HYP_QEMU_GUESTS,
    SMODE,
    SMODE_PV,
    assert_bystanders_unharmed,
    comparable,
    hostile_output_on_qemu,
    run_hostile,
    run_hostile_on_qemu,
    rvh,
    summary,
    vm_lines,
)

from rvh.hyp import GuestSpec, export_for_qemu

HYP_GUESTS_DIR = SMODE.parent / "hyp"
# one VM per mode, and an hw VM with two vCPUs that checks LR/SC, AMOs, IPIs and remote fences
# between them
THREE_MODES = [
    f"{SMODE / 'umode.elf'},virt=hw",
    f"{SMODE / 'umode.elf'},virt=trap",
    f"{SMODE_PV / 'umode.elf'},virt=pv",
]
SMP_HW = f"{SMODE / 'smp.elf'},mem=128M,vcpus=2,virt=hw"


def guest_args(specs: list[str]) -> list[str]:
    return [arg for spec in specs for arg in ("--guest", spec)]


def per_vm(output: str, vm: int) -> list[str]:
    """VM `vm`'s own lines (its console), in order, numbers masked where they are measured."""
    prefix = f"[vm{vm}] "
    lines = [line[len(prefix) :] for line in output.splitlines() if line.startswith(prefix)]
    return comparable("\n".join(lines))


def retired_on_hart(stderr: str, hart: int) -> dict[str, int]:
    found = re.search(rf"^  on hart {hart}: +(.*)$", stderr, re.MULTILINE)
    assert found is not None, stderr[-2000:]
    return {level: int(count) for level, count in re.findall(r"(\w+) (\d+)", found.group(1))}


def slices(output: str, vm: int) -> list[int]:
    """The hypervisor's count of the slices VM `vm` had on each host hart."""
    pattern = rf"hyp: vm {vm} .*\n(?:hyp:   .*\n)*?hyp:   slices by host hart (.*)\n"
    block = re.search(pattern, output)
    assert block is not None, output[-3000:]
    return [int(count) for _, count in re.findall(r"(\d+): (\d+)", block.group(1))]


def test_three_vms_one_per_mode_print_on_two_harts_what_they_print_on_one():
    specs = [*THREE_MODES, SMP_HW]
    one = rvh("--memory", "512M", "--hyp", *guest_args(specs))
    two = rvh("--memory", "512M", "--smp", "2", "--hyp", *guest_args(specs))
    assert one.returncode == two.returncode == 0, two.stdout[-3000:] + two.stderr
    for vm in range(len(specs)):
        assert per_vm(two.stdout, vm) == per_vm(one.stdout, vm)
        assert per_vm(two.stdout, vm)[-1].startswith("PASS smode/")
    for vm, mode in enumerate(["hw", "trap", "pv", "hw"]):
        assert f"hyp: vm {vm} ({mode}): status 0 (shutdown)" in two.stdout
    # with one host hart there is nothing to say about harts
    assert "slices by host hart" not in one.stdout
    # the trap and pv VMs stay on their home harts; the hw VMs may use either
    assert sorted(count > 0 for count in slices(two.stdout, 1)) == [False, True]
    assert sorted(count > 0 for count in slices(two.stdout, 2)) == [False, True]


def test_an_smp_hw_vm_runs_its_vcpus_on_both_host_harts():
    result = rvh("--memory", "512M", "--smp", "2", "--hyp", "--guest", SMP_HW, "--stats")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "harts 0 and 1: 50000 LR/SC and 50000 AMO increments each, totals exact" in result.stdout
    assert "[vm" not in result.stdout and "PASS smode/smp" in result.stdout
    # guest code (VS-mode) retired on each host hart, and the hypervisor ran on each
    for hart in (0, 1):
        levels = retired_on_hart(result.stderr, hart)
        assert levels["VS"] > 10_000 and levels["HS"] > 0, levels
    # the hypervisor saw it too: slices of the VM on each hart, in its summary and in --stats
    on_each = slices(result.stdout, 0)
    assert on_each[0] > 0 and on_each[1] > 0
    assert f"  slices by host hart: 0: {on_each[0]}, 1: {on_each[1]}" in result.stderr
    # its vCPUs' IPIs and HSM start kicked the other host hart, and its remote fences, made
    # while the other vCPU ran there, had that hart fence before the call returned
    counters = re.search(r"kicks (\d+), remote_fences (\d+)", result.stdout)
    assert counters is not None and int(counters.group(1)) > 0 and int(counters.group(2)) > 0


@pytest.mark.parametrize("mode", ["trap", "pv"])
def test_a_trap_or_pv_vm_with_two_vcpus_on_two_harts(mode):
    elf = str((SMODE_PV if mode == "pv" else SMODE) / "smp.elf")
    native = rvh("--sbi", "--smp", "2", elf)
    spec = f"{elf},mem=128M,vcpus=2,virt={mode}"
    vm = rvh("--memory", "512M", "--smp", "2", "--hyp", "--guest", SMP_HW, "--guest", spec)
    assert native.returncode == vm.returncode == 0, vm.stdout[-3000:] + vm.stderr
    assert "one hart" not in vm.stdout  # the multi-hart part ran
    assert per_vm(vm.stdout, 1) == comparable(native.stdout)
    assert f"hyp: vm 1 ({mode}): status 0 (shutdown)" in vm.stdout
    # both of its vCPUs on its home hart (its shadow tables are the VM's), none elsewhere
    assert sum(count > 0 for count in slices(vm.stdout, 1)) == 1


def test_counts_are_the_same_run_to_run_on_two_harts():
    args = ("--memory", "512M", "--smp", "2", "--hyp", *guest_args([*THREE_MODES, SMP_HW]))
    first, second = rvh(*args, "--stats"), rvh(*args, "--stats")
    assert first.returncode == second.returncode == 0, first.stdout[-3000:] + first.stderr
    assert summary(first.stdout) == summary(second.stdout)
    assert len(summary(first.stdout)) > 16
    for hart in (0, 1):
        assert retired_on_hart(first.stderr, hart) == retired_on_hart(second.stderr, hart)
    retired = [re.search(r"instructions retired: +(\d+)", r.stderr) for r in (first, second)]
    assert retired[0] and retired[1] and retired[0].group(1) == retired[1].group(1)


@pytest.mark.parametrize("mode", ["hw", "trap"])
def test_a_hostile_vm_beside_a_victim_on_two_harts(mode):
    # (run_hostile checks the victim's memory, the answers the hostile VM got, and the
    # hypervisor's own code against its ELF)
    text = run_hostile(mode, HYP_GUESTS_DIR, harts=2)
    assert "slices by host hart" in text


@pytest.mark.qemu
def test_the_same_vms_on_two_harts_of_qemu(tmp_path):
    # one VM per mode, an SMP hw VM and an SMP trap VM, where the harts really run in parallel
    specs = [*THREE_MODES, SMP_HW, f"{SMODE / 'smp.elf'},mem=128M,vcpus=2,virt=trap"]
    command = export_for_qemu([GuestSpec.parse(s) for s in specs], tmp_path, FW_JUMP, harts=2)
    assert command[command.index("-smp") + 1] == "2"
    qemu = subprocess.run(command, capture_output=True, text=True, timeout=300)
    ours = rvh("--memory", "640M", "--smp", "2", "--hyp", *guest_args(specs))
    assert qemu.returncode == ours.returncode == 0, qemu.stdout[-3000:] + qemu.stderr
    assert "OpenSBI" in qemu.stdout
    for vm in range(len(specs)):
        # (a U-mode rdtime with scounteren.TM = 0: OpenSBI on QEMU emulates it in M-mode)
        theirs = [line for line in per_vm(qemu.stdout, vm) if "TM = 0" not in line]
        assert theirs == [line for line in per_vm(ours.stdout, vm) if "TM = 0" not in line], vm
        assert f"hyp: vm {vm} (" in qemu.stdout
    assert "hyp:   slices by host hart 0: " in qemu.stdout


@pytest.mark.qemu
@pytest.mark.parametrize("mode", ["hw", "trap"])
def test_a_hostile_vm_beside_a_victim_on_two_harts_of_qemu(mode, tmp_path):
    # the QEMU_DEVIATIONS build (test_hyp_guests.py says why), with the harts truly parallel:
    # the same answers as on one hart, the victim intact, hello done
    qemu = run_hostile_on_qemu(mode, HYP_QEMU_GUESTS, tmp_path, harts=2)
    assert qemu.returncode == 0, qemu.stdout[-3000:] + qemu.stderr
    assert vm_lines(qemu.stdout, 1) == hostile_output_on_qemu(mode)
    assert f"hyp: vm 1 ({mode}): status 0 (shutdown)" in qemu.stdout
    assert_bystanders_unharmed(qemu.stdout, "trap" if mode == "hw" else "hw", "hw")
    # (and some VM's vCPU really ran on the second hart)
    assert re.search(r"hyp:   slices by host hart 0: \d+, 1: [1-9]", qemu.stdout)

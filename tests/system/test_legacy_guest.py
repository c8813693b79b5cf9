"""The legacy guest (guests/legacy): an S-mode kernel written for privileged spec 1.9.1 runs in
the hypervisor's trap mode with ``spec=1.9.1`` (firmware/hyp/legacy.c emulates sptbr,
sfence.vm, PUM and the 1.9.1 cause codes), and fails on today's hart at its first sfence.vm."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import GUESTS, ROOT, require_guest

from rvh.errors import EXIT_USAGE

STEPS = [
    "legacy: the firmware entered us with paging on (sptbr set)",
    "legacy: own page tables on, sptbr ASID 5",
    "legacy: PUM=1 load from a user page: cause 5, sbadaddr 0x40001000",
    "legacy: hello from U-mode",
    "legacy: demand page is there",
    "legacy: task exited with 0 after 3 system calls, 1 page mapped on demand",
    "legacy: PASS",
]


def rvh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def legacy_elf() -> str:
    return str(require_guest(GUESTS / "legacy" / "legacy.elf"))


@pytest.mark.slow
@pytest.mark.parametrize("cpu", [[], ["--cpu", "rv64,h=off"]], ids=["with-h", "without-h"])
def test_the_1_9_1_kernel_runs_in_trap_mode_with_its_spec(cpu):
    done = rvh(*cpu, "--hyp", "--guest", f"{legacy_elf()},virt=trap,spec=1.9.1")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line in STEPS] == STEPS
    assert "hyp: vm0: privileged spec 1.9.1 (sptbr, sfence.vm, PUM, mstatus.VM = Sv39)" in lines
    # the kernel's page faults reached it as 1.9.1 access faults (the hart raised 13 and 15)
    assert "sfence 2" in done.stdout


def sfence_vm_address() -> str:
    """Where the guest's sfence_vm_all is (the illegal instruction's sepc)."""
    nm = subprocess.run(
        ["riscv64-unknown-elf-nm", legacy_elf()], capture_output=True, text=True, check=True
    )
    for line in nm.stdout.splitlines():
        address, _, name = line.split()
        if name == "sfence_vm_all":
            return f"0x{int(address, 16):x}"
    raise AssertionError("no sfence_vm_all in legacy.elf")


@pytest.mark.slow
@pytest.mark.parametrize(
    "how",
    [["--sbi"], ["--hyp", "--guest"], ["--hyp", "--guest-trap"]],
    ids=["native", "hw-vm", "trap-vm-of-today"],
)
def test_on_todays_interface_it_stops_at_its_first_sfence_vm(how):
    """Natively, as an hw VM or a trap VM without spec=: sptbr is satp (its ASID bits leave
    MODE Bare), and sfence.vm is an illegal instruction, which the kernel reports and fails."""
    elf = legacy_elf()
    if how == ["--sbi"]:
        args = ["--sbi", elf]
    elif how == ["--hyp", "--guest"]:
        args = ["--hyp", "--guest", f"{elf},virt=hw"]
    else:
        args = ["--hyp", "--guest", f"{elf},virt=trap"]
    done = rvh(*args)
    expected = (
        "legacy: unexpected trap: scause 2 (illegal instruction) "
        f"sepc {sfence_vm_address()} sbadaddr 0x10400073"
    )
    assert expected in done.stdout.splitlines(), done.stdout[-2000:] + done.stderr
    assert "legacy: PASS" not in done.stdout
    assert done.returncode != 0


def test_spec_needs_trap_mode():
    done = rvh("--hyp", "--guest", f"{legacy_elf()},virt=hw,spec=1.9.1")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.endswith("spec=1.9.1 needs virt=trap (the hypervisor emulates that "
                                "privileged interface on the hart)\n")  # fmt: skip
    unknown = rvh("--hyp", "--guest", f"{legacy_elf()},virt=trap,spec=1.7")
    assert unknown.returncode == EXIT_USAGE
    assert unknown.stderr == "rvh: --guest spec=1.7: use one of current, 1.9.1\n"

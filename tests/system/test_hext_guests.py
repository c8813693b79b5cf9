"""The H-extension guests (guests/hext): the strict builds, which follow the ratified spec
everywhere, pass on rvh; the builds that accept QEMU 7.2's documented deviations pass on QEMU
(proving the guests right where the two agree)."""

import os
import subprocess

import pytest
from support import GUESTS, ROOT, require_guest, require_qemu

from rvh.config import MachineConfig
from rvh.machine import Machine

HEXT = ["hcsr", "hvirt", "hvinst", "hstage", "hirq"]


def elf(name):
    return require_guest(GUESTS / "hext" / f"{name}.elf")


@pytest.mark.parametrize("name", HEXT)
def test_strict_build_passes_on_rvh(name):
    output = bytearray()
    machine = Machine(MachineConfig(max_instructions=200_000_000), output=output.extend)
    machine.load(str(elf(name)))
    result = machine.run_sync()
    text = output.decode(errors="replace")
    assert f"PASS {name}" in text, text[-3000:]
    assert "FAIL" not in text
    assert result.status == 0


def test_without_h_the_guests_see_no_hypervisor():
    output = bytearray()
    machine = Machine(
        MachineConfig(extensions="acimsu", max_instructions=10_000_000), output=output.extend
    )
    machine.load(str(elf("hcsr")))
    result = machine.run_sync()
    text = output.decode(errors="replace")
    # the guest's first hypervisor CSR read (csrr s0, hstatus) is an illegal instruction: the
    # H CSRs do not exist without misa.H (priv 8), and the guest reports the unexpected trap
    assert "unexpected trap: mcause=0x0000000000000002" in text, text
    assert "mtval=0x0000000060002473" in text  # csrr s0, hstatus
    assert (result.status, result.reason) == (127, "test device: fail 127")


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("name", HEXT)
def test_qemu_build_passes_on_qemu(name):
    require_guest(GUESTS / "hext" / f"{name}-qemu.elf")
    done = subprocess.run(
        [str(ROOT / "guests" / "hext" / "run.sh"), "qemu", name],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT / "guests" / "hext",
        env={**os.environ, "QEMU": require_qemu()},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
    # run.sh keeps each guest's console in build/hext/NAME.qemu.out
    console = (GUESTS / "hext" / f"{name}.qemu.out").read_text(errors="replace")
    assert f"PASS {name}" in console, console[-3000:]
    assert "FAIL" not in console

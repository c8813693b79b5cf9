"""The H-extension guests (guests/hext): the strict builds, which follow the ratified spec
everywhere, pass on rvh; the builds that accept QEMU 7.2's documented deviations pass on QEMU
(proving the guests right where the two agree)."""

import shutil
import subprocess

import pytest
from support import GUESTS, ROOT

from rvh.config import MachineConfig
from rvh.machine import Machine

HEXT = ["hcsr", "hvirt", "hvinst", "hstage", "hirq"]


def elf(name):
    path = GUESTS / "hext" / f"{name}.elf"
    if not path.exists():
        pytest.skip("guests not built (make guests)")
    return path


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
    assert result.status != 0  # misa.H is the guest's first check


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-riscv64") is None, reason="QEMU not installed")
@pytest.mark.parametrize("name", HEXT)
def test_qemu_build_passes_on_qemu(name):
    qemu_elf = GUESTS / "hext" / f"{name}-qemu.elf"
    if not qemu_elf.exists():
        pytest.skip("guests not built (make guests)")
    done = subprocess.run(
        [str(ROOT / "guests" / "hext" / "run.sh"), "qemu", name],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT / "guests" / "hext",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]

"""The S-mode guests pass on rvh's built-in SBI and under Debian's OpenSBI, and (proving the
guests themselves right) on QEMU 7.2 with OpenSBI."""

import os
import re
import subprocess

import pytest
from support import CROSS, GUESTS, ROOT, require_guest, require_opensbi, require_qemu

from rvh.config import MachineConfig
from rvh.machine import Machine

SMODE = ["hello", "sbi", "timer", "sv39", "sv48", "umode", "smp", "opbench", "fpu"]


def guest(name):
    return require_guest(GUESTS / "smode" / f"{name}.elf")


def run(elf, *, firmware=None, harts=1):
    output = bytearray()
    machine = Machine(
        MachineConfig(harts=harts, firmware_traps=firmware is None, max_instructions=300_000_000),
        output=output.extend,
    )
    if firmware is None:
        machine.load_sbi_payload(str(elf))
    else:
        machine.load_firmware(str(firmware), str(elf))
    return machine.run_sync(), output.decode(errors="replace")


@pytest.mark.parametrize("name", SMODE)
def test_on_builtin_sbi(name):
    harts = 2 if name == "smp" else 1
    result, output = run(guest(name), harts=harts)
    assert f"PASS smode/{name}" in output, output[-2000:]
    assert (result.status, result.reason) == (0, "SBI shutdown")


@pytest.mark.parametrize("name", SMODE)
def test_under_opensbi(name):
    harts = 2 if name == "smp" else 1
    result, output = run(guest(name), firmware=require_opensbi(), harts=harts)
    assert "OpenSBI v1.1" in output
    assert f"PASS smode/{name}" in output, output[-2000:]
    assert (result.status, result.reason) == (0, "test device: pass")  # OpenSBI's SRST


@pytest.mark.qemu
@pytest.mark.parametrize("name", SMODE)
def test_on_qemu(name):
    elf = guest(name)
    extra = ["-smp", "2"] if name == "smp" else []
    firmware = {"QEMU": require_qemu(), "OPENSBI": str(require_opensbi())}
    done = subprocess.run(
        [str(ROOT / "guests" / "run-qemu.sh"), str(elf), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **firmware},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-500:]
    assert f"PASS smode/{name}" in done.stdout


def test_two_harts_interleave_deterministically():
    """The same SMP run twice: same output, same instruction count on every hart."""
    elf = guest("smp")
    runs = []
    for _ in range(2):
        output = bytearray()
        machine = Machine(MachineConfig(harts=2, firmware_traps=True), output=output.extend)
        machine.load_sbi_payload(str(elf))
        result = machine.run_sync()
        assert result.status == 0
        runs.append(
            (
                bytes(output),
                [h.instret for h in machine.harts],
                [int(h.state[38]) for h in machine.harts],
            )
        )
    assert runs[0] == runs[1]


# the lines that print an address of the image (the pv build's image is laid out differently)
_ADDRESS_LINE = re.compile(r"^satp = ")


@pytest.mark.parametrize("name", SMODE)
def test_pv_build_falls_back_to_the_real_instructions_natively(name):
    """A pv build (guests/common/pv.h, -DRVH_PV) on a machine whose SBI has no rvh pv extension:
    the BASE probe says so, and the same checks pass on the real instructions."""
    pv_elf = require_guest(GUESTS / "smode-pv" / f"{name}.elf")
    symbols = subprocess.run(
        [CROSS + "nm", str(pv_elf)], capture_output=True, text=True, check=True
    ).stdout
    assert " rvh_pv_strap_entry" in symbols and " rvh_pv_init" in symbols  # really a pv build
    harts = 2 if name == "smp" else 1
    native_result, native = run(guest(name), harts=harts)
    pv_result, pv = run(pv_elf, harts=harts)
    assert f"PASS smode/{name}" in pv, pv[-2000:]
    assert (pv_result.status, pv_result.reason) == (native_result.status, native_result.reason)

    def comparable(text):
        return [
            re.sub(r"0x[0-9a-f]+|\d+", "N", line) if _ADDRESS_LINE.match(line) else line
            for line in text.splitlines()
            if not re.search(r"ticks|cycle|instret", line)
        ]

    assert comparable(pv) == comparable(native)


@pytest.mark.qemu
@pytest.mark.parametrize("name", SMODE)
def test_pv_build_on_qemu(name):
    """A pv build on QEMU under OpenSBI (no rvh pv extension there): the real instructions."""
    elf = require_guest(GUESTS / "smode-pv" / f"{name}.elf")
    extra = ["-smp", "2"] if name == "smp" else []
    firmware = {"QEMU": require_qemu(), "OPENSBI": str(require_opensbi())}
    done = subprocess.run(
        [str(ROOT / "guests" / "run-qemu.sh"), str(elf), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **firmware},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-500:]
    assert f"PASS smode/{name}" in done.stdout

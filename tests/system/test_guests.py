"""The self-checking guests under guests/ pass on rvh (each exits 0 and says PASS)."""

import pytest
from support import GUESTS, require_guest, require_qemu

from rvh.machine import Machine

ISA_GUESTS = [
    "rv64i",
    "rv64i_mem",
    "rv64m",
    "rv64a",
    "rv64c",
    "zicsr",
    "mtraps",
    "rv64f",
    "rv64d",
    "sdtrig",
]


def run_guest(path, max_instructions=50_000_000):
    output = bytearray()
    from rvh.config import MachineConfig

    machine = Machine(MachineConfig(max_instructions=max_instructions), output=output.extend)
    machine.load(str(path))
    result = machine.run_sync()
    return result, output.decode(errors="replace"), machine


@pytest.mark.parametrize("name", ISA_GUESTS)
def test_isa_guest_passes(name):
    elf = require_guest(GUESTS / "isa" / f"{name}.elf")
    result, output, _ = run_guest(elf)
    assert f"PASS {name}" in output, output
    assert result.status == 0
    assert result.reason == "test device: pass"


def test_hello_prints_and_passes_dtb_address():
    elf = require_guest(GUESTS / "hello" / "hello.elf")
    result, output, machine = run_guest(elf)
    assert "Hello from rvh guest!" in output
    # a0 = hartid and a1 = the device tree address, as on QEMU's virt board
    assert f"hartid=0 dtb={machine.fdt_address:#x}" in output
    assert machine.fdt_address == 0x8FE0_0000
    assert (result.status, result.reason) == (0, "test device: pass")


def test_hello_picolibc():
    elf = require_guest(GUESTS / "hello" / "hello_picolibc.elf")
    result, output, _ = run_guest(elf)
    assert "picolibc" in output and result.status == 0
    assert result.reason == "test device: pass"


@pytest.mark.parametrize(
    "name, status, text", [("htif_hello", 0, "Hello over HTIF"), ("htif_fail", 3, "")]
)
def test_htif_guests(name, status, text):
    elf = require_guest(GUESTS / "htif" / f"{name}.elf")
    result, output, machine = run_guest(elf)
    assert text in output
    assert result.status == status
    assert result.reason == ("htif: pass" if status == 0 else f"htif: fail {status}")
    assert machine.htif is not None and machine.htif.commands >= 1


@pytest.mark.qemu
@pytest.mark.parametrize("name", ISA_GUESTS)
def test_isa_guest_passes_on_qemu(name):
    """The reference agrees the guests are right (QEMU 7.2, -bios none)."""
    import subprocess

    from support import ROOT

    require_qemu()
    elf = require_guest(GUESTS / "isa" / f"{name}.elf")
    done = subprocess.run(
        [str(ROOT / "guests" / "run-qemu.sh"), str(elf)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert f"PASS {name}" in done.stdout

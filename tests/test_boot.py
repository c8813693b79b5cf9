"""Boot recipes: what each one leaves the harts, and the hint when a program was meant for
another one (an S-mode payload run bare, an M-mode program run with --sbi)."""

import pytest
from support import GUESTS, build_elf, needs_toolchain

from rvh.boot import BareElf, BuiltinSbiBoot, FirmwareBoot, privilege_of_code
from rvh.config import BOOT_ROM_BASE, MachineConfig
from rvh.cpu import layout as L
from rvh.errors import EXIT_DEADLOCK, LoadError
from rvh.loader import read_elf
from rvh.machine import Machine

pytestmark = needs_toolchain


@pytest.mark.parametrize(
    "source, privilege",
    [
        ("1: j 1b\n", None),
        ("csrw stvec, zero\ncsrr t0, time\necall\n", "S"),
        ("csrw stvec, zero\ncsrw mtvec, zero\n", "M"),
        # a word in .rodata that decodes as csrw mtvec is data, not code
        ("csrw sscratch, zero\n.section .rodata\n.word 0x30529073\n", "S"),
    ],
)
def test_privilege_of_code_reads_only_executable_sections(tmp_path, source, privilege):
    elf = read_elf(build_elf(source, tmp_path / "p.elf"))
    assert privilege_of_code(elf) == privilege


def test_each_recipe_sets_the_harts_where_its_program_starts(tmp_path):
    payload = build_elf("1: j 1b\n", tmp_path / "payload.elf", base=0x8020_0000)
    bare = Machine(MachineConfig(harts=2), output=lambda _: None)
    bare.boot(BareElf(str(payload)))
    assert [h.pc for h in bare.harts] == [BOOT_ROM_BASE, BOOT_ROM_BASE]
    assert [h.mode for h in bare.harts] == ["M", "M"]
    assert bare.sbi is None and not bare.machine[L.M_FIRMWARE_TRAPS]

    sbi = Machine(MachineConfig(harts=2), output=lambda _: None)
    sbi.boot(BuiltinSbiBoot(str(payload)))
    assert sbi.harts[0].pc == 0x8020_0000 and sbi.harts[0].mode == "HS"
    assert sbi.harts[0].x(11) == sbi.fdt_address
    assert sbi.harts[1].state[L.HALTED] == 1  # HSM STOPPED until hart_start
    assert sbi.machine[L.M_FIRMWARE_TRAPS] == 1

    firmware = build_elf("1: j 1b\n", tmp_path / "fw.elf")
    with_firmware = Machine(MachineConfig(), output=lambda _: None)
    with_firmware.boot(FirmwareBoot(str(firmware), str(payload)))
    rom = with_firmware.boot_rom_image
    assert int.from_bytes(rom[24:32], "little") == 0x8000_0000  # the boot ROM starts the FW
    assert (0x8020_0000).to_bytes(8, "little") in rom[40:]  # fw_dynamic's next_addr


def test_firmware_and_payload_may_not_overlap(tmp_path):
    firmware = build_elf("1: j 1b\n", tmp_path / "fw.elf")
    machine = Machine(MachineConfig(), output=lambda _: None)
    with pytest.raises(LoadError, match="overlaps the firmware"):
        machine.boot(FirmwareBoot(str(firmware), str(firmware)))


def test_reset_restarts_the_payload_on_the_builtin_sbi(tmp_path):
    # SRST cold reboot once, then shutdown.  The images are reloaded at the reset (as QEMU
    # reloads its ROM images), so the counter in the ELF's .data starts at 0 again each time,
    # while one in RAM outside every image survives the reset.
    source = """
        la t0, counter
        ld t1, 0(t0)
        addi t1, t1, 1
        sd t1, 0(t0)
        li t0, 0x80400000
        ld t1, 0(t0)
        addi t1, t1, 1
        sd t1, 0(t0)
        li t2, 2
        beq t1, t2, 1f
        li a7, 0x53525354
        li a6, 0
        li a0, 1
        li a1, 0
        ecall
    1:  li a7, 0x53525354
        li a6, 0
        li a0, 0
        li a1, 0
        ecall
    .data
    counter: .dword 0
    """
    payload = build_elf(source, tmp_path / "payload.elf", base=0x8020_0000)
    machine = Machine(MachineConfig(max_instructions=100_000), output=lambda _: None)
    machine.load_sbi_payload(str(payload))
    result = machine.run_sync()
    assert (result.status, result.reason) == (0, "SBI shutdown")
    counter = machine.elf.symbols["counter"]
    assert int.from_bytes(machine.bus.read_bytes(counter, 8), "little") == 1
    assert machine.bus.read_u64(0x8040_0000) == 2
    assert machine.reboots == 1


def test_an_s_mode_payload_run_bare_asks_did_you_mean_sbi():
    machine = Machine(MachineConfig(), output=lambda _: None)
    machine.load(str(GUESTS / "smode" / "hello.elf"))
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK
    assert result.reason.startswith("trap loop: hart 0")
    assert "; did you mean --sbi? " in result.reason
    assert "uses only S-mode CSRs" in result.reason


def test_an_m_mode_program_run_with_sbi_asks_did_you_mean_without():
    machine = Machine(MachineConfig(), output=lambda _: None)
    machine.load_sbi_payload(str(GUESTS / "hello" / "hello.elf"))
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK
    assert "in HS-mode; did you mean to run it without --sbi? " in result.reason
    assert "accesses M-mode CSRs" in result.reason


def test_a_deadlocked_s_mode_payload_run_bare_asks_too(tmp_path):
    # waiting for a supervisor timer nobody will set (no SBI): a deadlock, and the same hint
    elf = build_elf("csrw sie, zero\n1: wfi\nj 1b\n", tmp_path / "wait.elf", base=0x8020_0000)
    machine = Machine(MachineConfig(), output=lambda _: None)
    machine.load(str(elf))
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK
    assert result.reason.startswith("deadlock: every hart waits in wfi")
    assert "; did you mean --sbi? " in result.reason


def test_a_program_without_privileged_code_gets_no_hint(tmp_path):
    # fetch from nowhere with no handler, in a program that touches no CSR: no guess to make
    elf = build_elf("jr zero\n", tmp_path / "plain.elf")
    machine = Machine(MachineConfig(), output=lambda _: None)
    machine.load(str(elf))
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK and "did you mean" not in result.reason

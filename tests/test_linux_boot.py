"""What a Linux kernel needs of rvh's boot: a raw RISC-V Image for --kernel, --initrd placed
as QEMU 7.2 places it and named in /chosen, raw firmware binaries, reloading the images at a
reboot, --no-reboot, and one clear line (status 125) for each bad input."""

from __future__ import annotations

import pytest
from support import assemble, build_elf, needs_toolchain

from rvh.boot import BareElf, BuiltinSbiBoot, FirmwareBoot
from rvh.cli import main
from rvh.config import RAM_BASE, MachineConfig
from rvh.cpu import layout as L
from rvh.errors import EXIT_LOAD_ERROR, LoadError
from rvh.fdt import parse_dtb
from rvh.loader import is_linux_image, read_kernel
from rvh.machine import Machine

pytestmark = needs_toolchain

MiB = 1 << 20
SBI_SRST = 0x53525354

# S-mode code that reports a0 (hart id) and a1 (device tree) in RAM words, then asks the SBI
# to reset (a0 = 1: cold reboot) the first time and to shut down the second time; the boot
# count lives in RAM outside every image, so it survives the reset while the images do not.
KERNEL_BODY = f"""
    li t0, 0x80f00000
    ld t1, 0(t0)
    addi t1, t1, 1
    sd t1, 0(t0)
    sd a0, 8(t0)
    sd a1, 16(t0)
    la t2, image_data
    ld t3, 0(t2)
    sd t3, 24(t0)
    addi t3, t3, 1
    sd t3, 0(t2)
    li a7, {SBI_SRST}
    li a6, 0
    li a0, 1
    li t2, 2
    bne t1, t2, 1f
    li a0, 0
1:  li a1, 0
    ecall
2:  j 2b
    .balign 8
image_data: .dword 40
"""


def linux_image(image_size: int = 0x20_0000, body: str = KERNEL_BODY) -> bytes:
    """A raw RISC-V Linux Image: the 64-byte header (code0 jumps over it), then ``body``."""
    code = assemble(body, base=RAM_BASE + 0x40)
    header = bytearray(64)
    header[0:4] = (0x0400006F).to_bytes(4, "little")  # jal x0, +64
    header[8:16] = (0x20_0000).to_bytes(8, "little")  # text_offset
    header[16:24] = image_size.to_bytes(8, "little")
    header[0x30:0x38] = b"RISCV\0\0\0"
    header[0x38:0x3C] = b"RSC\x05"
    return bytes(header) + code


def test_a_linux_image_is_recognized_by_its_header(tmp_path):
    raw = linux_image()
    assert is_linux_image(raw)
    assert not is_linux_image(raw[:0x3B])
    path = tmp_path / "Image"
    path.write_bytes(raw)
    kernel = read_kernel(str(path), RAM_BASE + 2 * MiB)
    assert kernel.entry == RAM_BASE + 2 * MiB
    assert [(s.address, s.memory_size) for s in kernel.segments] == [
        (RAM_BASE + 2 * MiB, 0x20_0000)  # image_size covers the bss
    ]


def test_the_image_boots_on_the_builtin_sbi_at_ram_base_plus_2_mib(tmp_path):
    path = tmp_path / "Image"
    path.write_bytes(linux_image())
    config = MachineConfig(max_instructions=100_000, rtc_base_ns=10**18)
    machine = Machine(config, output=lambda _: None)
    machine.boot(BuiltinSbiBoot(str(path)))
    assert machine.harts[0].pc == RAM_BASE + 2 * MiB
    result = machine.run_sync()
    assert (result.status, result.reason) == (0, "SBI shutdown")
    assert machine.bus.read_u64(0x80F0_0000) == 2  # booted twice: one SRST reboot
    assert machine.bus.read_u64(0x80F0_0008) == 0  # a0 = hart id
    assert machine.bus.read_u64(0x80F0_0010) == machine.fdt_address  # a1 = device tree
    # the image was reloaded at the reboot: its data word read 40 both times
    assert machine.bus.read_u64(0x80F0_0018) == 40
    assert machine.reboots == 1
    # the RTC kept running through the reboot: it counts both boots' time, not the last one's
    since_reboot = int(machine.harts[0].state[L.TIME_NS])
    assert machine.rtc.now_ns() - machine.rtc.base_ns > since_reboot > 0


def test_no_reboot_turns_the_reboot_into_an_exit(tmp_path):
    path = tmp_path / "Image"
    path.write_bytes(linux_image())
    config = MachineConfig(max_instructions=100_000, no_reboot=True)
    machine = Machine(config, output=lambda _: None)
    machine.boot(BuiltinSbiBoot(str(path)))
    result = machine.run_sync()
    assert (result.status, result.reason) == (0, "reboot (--no-reboot)")
    assert machine.bus.read_u64(0x80F0_0000) == 1


@pytest.mark.parametrize("memory, offset", [(256 * MiB, 128 * MiB), (64 * MiB, 32 * MiB)])
def test_the_initrd_goes_where_qemu_puts_it_and_into_chosen(tmp_path, memory, offset):
    # QEMU 7.2: kernel start + min(RAM / 2, 128 MiB)
    image, initrd = tmp_path / "Image", tmp_path / "initrd"
    image.write_bytes(linux_image())
    initrd.write_bytes(bytes(range(256)) * 40)
    machine = Machine(MachineConfig(memory=memory), output=lambda _: None)
    machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
    start = RAM_BASE + 2 * MiB + offset
    assert machine.initrd_range == (start, start + 10240)
    assert machine.bus.read_bytes(start, 10240) == initrd.read_bytes()
    chosen = parse_dtb(machine.bus.read_bytes(machine.fdt_address, 0x2000))["/chosen"]
    assert chosen.get_u64("linux,initrd-start") == start
    assert chosen.get_u64("linux,initrd-end") == start + 10240


def test_the_firmware_may_be_a_raw_binary_and_the_image_goes_after_it(tmp_path):
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(assemble("1: j 1b\n") + bytes(3 * MiB))  # ends past 3 MiB
    image = tmp_path / "Image"
    image.write_bytes(linux_image())
    machine = Machine(MachineConfig(memory=64 * MiB), output=lambda _: None)
    machine.boot(FirmwareBoot(str(firmware), str(image)))
    rom = machine.boot_rom_image
    assert int.from_bytes(rom[24:32], "little") == RAM_BASE  # the boot ROM starts the FW
    # the first 2 MiB boundary after the firmware's end, in fw_dynamic's next_addr
    assert (RAM_BASE + 4 * MiB).to_bytes(8, "little") in rom[40:]
    assert machine.bus.read_bytes(RAM_BASE + 4 * MiB, 64) == image.read_bytes()[:64]


def test_bare_boot_puts_an_image_at_the_start_of_ram(tmp_path):
    image = tmp_path / "Image"
    image.write_bytes(linux_image())
    machine = Machine(MachineConfig(), output=lambda _: None)
    elf = machine.boot(BareElf(str(image)))
    assert elf.entry == RAM_BASE


def refused(tmp_path, capsys, *args: str) -> str:
    status = main(["run", "--serial", "null", *args])
    message = capsys.readouterr().err.strip()
    assert status == EXIT_LOAD_ERROR, message
    assert len(message.splitlines()) == 1
    return message


def test_bad_kernels_and_initrds_get_one_line_and_status_125(tmp_path, capsys):
    image = tmp_path / "Image"
    image.write_bytes(linux_image())
    truncated = tmp_path / "short"
    truncated.write_bytes(linux_image()[:40] + b"RSC\x05"[:0])
    header_only = tmp_path / "header-only"
    header_only.write_bytes(linux_image()[:0x3C])
    unknown = tmp_path / "unknown"
    unknown.write_bytes(b"\x00" * 4096)
    big_initrd = tmp_path / "big"
    big_initrd.write_bytes(bytes(40 * MiB))
    small = tmp_path / "small"
    small.write_bytes(b"x")
    huge_image = tmp_path / "huge-Image"
    huge_image.write_bytes(linux_image(image_size=200 * MiB))

    message = refused(tmp_path, capsys, "--kernel", str(unknown))
    assert "not an ELF file or a RISC-V Linux Image" in message
    message = refused(tmp_path, capsys, "--kernel", str(truncated))
    assert "not an ELF file or a RISC-V Linux Image" in message
    message = refused(tmp_path, capsys, "--kernel", str(header_only))
    assert "truncated Linux Image" in message
    message = refused(
        tmp_path, capsys, "-m", "64M", "--kernel", str(image), "--initrd", str(big_initrd)
    )
    assert "the initrd" in message and "does not fit in RAM" in message
    message = refused(
        tmp_path, capsys, "-m", "512M", "--kernel", str(huge_image), "--initrd", str(small)
    )
    assert "overlaps the initrd" in message
    message = refused(tmp_path, capsys, "--kernel", str(image), "--initrd", str(tmp_path / "no"))
    assert "no such file" in message


def test_a_truncated_efi_stub_image_is_refused(tmp_path):
    # an Image with an EFI stub: its PE section table says how long the file must be
    raw = bytearray(linux_image())
    raw[0:2] = b"MZ"
    pe = 0x40
    raw += bytes(0x200)
    raw[0x3C:0x40] = pe.to_bytes(4, "little")
    raw[pe : pe + 4] = b"PE\0\0"
    raw[pe + 6 : pe + 8] = (1).to_bytes(2, "little")  # one section
    raw[pe + 20 : pe + 22] = (0).to_bytes(2, "little")  # no optional header
    entry = pe + 24
    raw[entry + 16 : entry + 20] = (0x1000).to_bytes(4, "little")  # raw size
    raw[entry + 20 : entry + 24] = (0x1000).to_bytes(4, "little")  # raw pointer
    path = tmp_path / "efi-Image"
    path.write_bytes(bytes(raw))
    with pytest.raises(
        LoadError, match=r"truncated Linux Image \(\d+ bytes; its sections need 8192\)"
    ):
        read_kernel(str(path), RAM_BASE + 2 * MiB)
    path.write_bytes(bytes(raw) + bytes(0x2000 - len(raw)))
    assert read_kernel(str(path), RAM_BASE + 2 * MiB).entry == RAM_BASE + 2 * MiB


def test_the_kernel_is_given_once(tmp_path, capsys):
    elf = build_elf("1: j 1b\n", tmp_path / "k.elf")
    assert main(["run", "--kernel", str(elf), str(elf)]) == 2
    assert "give the kernel once" in capsys.readouterr().err


def test_rtc_base_takes_utc_or_a_date():
    from rvh.cli import parse_rtc_base
    from rvh.errors import ConfigError

    assert parse_rtc_base(None) is None and parse_rtc_base("utc") is None
    assert parse_rtc_base("2025-03-01T12:00:00") == 1_740_830_400 * 10**9
    with pytest.raises(ConfigError, match="give utc or a date"):
        parse_rtc_base("yesterday")


def test_append_and_no_reboot_from_the_command_line(tmp_path, capsys):
    path = tmp_path / "Image"
    path.write_bytes(linux_image())
    status = main(
        ["run", "--serial", "null", "--kernel", str(path), "--append", "console=ttyS0",
         "--no-reboot", "--max-insns", "100000"]
    )  # fmt: skip
    assert status == 0  # the image's first request is a reboot: --no-reboot ends the run there
    assert capsys.readouterr().err == ""

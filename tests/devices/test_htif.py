"""HTIF commands through guest memory (riscv-isa-sim fesvr conventions)."""

from rvh.bus import Bus
from rvh.devices.htif import Htif

TOHOST = 0x8000_1000
FROMHOST = 0x8000_1008


def make():
    bus = Bus(0x8000_0000, 1 << 20, 0x1000, 0xF000)
    out = bytearray()
    offs = []
    htif = Htif(bus, TOHOST, FROMHOST, out.extend, lambda code, why: offs.append(code))
    return bus, htif, out, offs


def test_exit_codes():
    bus, htif, _, offs = make()
    bus.write_u64(TOHOST, 1)
    htif.service()
    bus.write_u64(TOHOST, (5 << 1) | 1)
    htif.service()
    assert offs == [0, 5]
    assert bus.read_u64(TOHOST) == 0


def test_console_putchar_acknowledged_in_fromhost():
    bus, htif, out, _ = make()
    bus.write_u64(TOHOST, (1 << 56) | (1 << 48) | ord("Q"))
    htif.service()
    assert out == b"Q"
    assert bus.read_u64(TOHOST) == 0
    assert bus.read_u64(FROMHOST) == (1 << 56) | (1 << 48) | ord("Q")


def test_syscall_write_and_exit():
    bus, htif, out, offs = make()
    frame, text = 0x8000_2000, 0x8000_3000
    bus.write_bytes(text, b"hello\n")
    for i, word in enumerate([64, 1, text, 6]):
        bus.write_u64(frame + 8 * i, word)
    bus.write_u64(TOHOST, frame)
    htif.service()
    assert out == b"hello\n"
    assert bus.read_u64(frame) == 6  # the syscall's return value
    for i, word in enumerate([93, 9, 0, 0]):
        bus.write_u64(frame + 8 * i, word)
    bus.write_u64(TOHOST, frame)
    htif.service()
    assert offs == [9]


def test_syscall_frame_outside_ram_ends_the_run_cleanly():
    bus, htif, _, offs = make()
    bus.write_u64(TOHOST, 0x10)  # even: a syscall frame at 0x10, not RAM
    htif.service()
    assert offs == [1]

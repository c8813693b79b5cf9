"""The host side of the console: --serial destinations and stdin input into the UART."""

import os
import subprocess
import sys

import pytest
import trio
from support import ROOT, needs_toolchain

from rvh.config import RAM_BASE
from rvh.devices.console import ConsoleInput, serial_output
from rvh.devices.uart16550 import Uart16550
from rvh.errors import ConfigError


def test_serial_destinations(tmp_path):
    write, wants_input = serial_output("null")
    write(b"ignored")
    assert not wants_input
    path = tmp_path / "console.txt"
    write, wants_input = serial_output(f"file:{path}")
    write(b"hello")
    write.close()
    assert path.read_bytes() == b"hello" and not wants_input
    assert serial_output("stdio")[1]
    with pytest.raises(ConfigError):
        serial_output("tcp:1234")
    with pytest.raises(ConfigError):
        serial_output(f"file:{tmp_path}/missing/dir/x")


async def test_console_input_feeds_the_uart_from_a_pipe():
    uart = Uart16550(lambda data: None)
    woken = []
    read_end, write_end = os.pipe()
    console = ConsoleInput(
        uart.feed, lambda: uart.rx_space, lambda: None, lambda: woken.append(1), fd=read_end
    )
    os.write(write_end, b"x" * 40)  # more than the 16-byte FIFO: the rest waits
    os.close(write_end)
    async with trio.open_nursery() as nursery:
        await nursery.start(console.serve)
        received = bytearray()
        with trio.fail_after(5):
            while len(received) < 40:
                await trio.sleep(0.01)
                while uart.rx:
                    received.append(uart.read(0, 1))
        with trio.fail_after(5):
            while console.live:
                await trio.sleep(0.01)
    os.close(read_end)
    assert received == b"x" * 40 and woken
    assert console.statistics()["bytes_read"] == 40


ECHO_UPPERCASE = """
    li s0, 0x10000000        # UART
1:  lbu t0, 5(s0)            # LSR
    andi t0, t0, 1           # data ready?
    beqz t0, 1b
    lbu t1, 0(s0)            # RBR
    li t2, 10
    beq t1, t2, 2f
    li t2, 'a'
    blt t1, t2, 3f
    addi t1, t1, -32
3:  sb t1, 0(s0)
    j 1b
2:  li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
"""


@needs_toolchain
def test_guest_reads_stdin(tmp_path):
    elf = tmp_path / "echo.elf"
    src = tmp_path / "echo.S"
    src.write_text(".section .text\n.globl _start\n_start:\n" + ECHO_UPPERCASE)
    subprocess.run(
        [
            "riscv64-unknown-elf-gcc",
            "-march=rv64imac_zicsr",
            "-mabi=lp64",
            "-nostdlib",
            "-Wl,-n",
            f"-Wl,-Ttext={RAM_BASE:#x}",
            "-o",
            str(elf),
            str(src),
        ],
        check=True,
    )
    done = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", str(elf)],
        input=b"abc\n",
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"ABC"


async def test_ctrl_a_h_lists_the_escapes_on_a_terminal():
    # a pseudo-terminal, so the console takes its escapes (only a terminal has them)
    import pty

    from rvh.devices.console import ESCAPE_HELP_TEXT

    uart = Uart16550(lambda data: None)
    helped, ended = [], []
    controller, terminal = pty.openpty()
    console = ConsoleInput(
        uart.feed,
        lambda: uart.rx_space,
        lambda: ended.append(1),
        lambda: None,
        fd=terminal,
        help_out=helped.append,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(console.serve)
        os.write(controller, b"a\x01hb\x01\x01c")
        received = bytearray()
        with trio.fail_after(5):
            while len(received) < 4:
                await trio.sleep(0.01)
                while uart.rx:
                    received.append(uart.read(0, 1))
        os.write(controller, b"\x01x")
        with trio.fail_after(5):
            while not ended:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    os.close(controller)
    os.close(terminal)
    assert received == b"ab\x01c"  # Ctrl-A h and Ctrl-A x never reach the guest
    assert helped == [ESCAPE_HELP_TEXT]
    assert b"C-a x    exit rvh" in ESCAPE_HELP_TEXT


async def test_ctrl_a_s_asks_for_a_save_on_a_terminal():
    import pty

    from rvh.devices.console import ESCAPE_HELP_TEXT

    uart = Uart16550(lambda data: None)
    saves = []
    controller, terminal = pty.openpty()
    console = ConsoleInput(
        uart.feed,
        lambda: uart.rx_space,
        lambda: None,
        lambda: None,
        fd=terminal,
        save=lambda: saves.append(1),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(console.serve)
        os.write(controller, b"a\x01sb")
        received = bytearray()
        with trio.fail_after(5):
            while len(received) < 2:
                await trio.sleep(0.01)
                while uart.rx:
                    received.append(uart.read(0, 1))
        nursery.cancel_scope.cancel()
    os.close(controller)
    os.close(terminal)
    assert received == b"ab"  # Ctrl-A s never reaches the guest
    assert saves == [1]
    assert b"C-a s    save the VM" in ESCAPE_HELP_TEXT

"""The host side of the serial console: where UART output goes (``--serial``) and the task that
feeds keyboard input from stdin into the UART's receive FIFO.

When stdin is a terminal it is put in raw mode for the run (and restored however the run ends),
so keys reach the guest unchanged; Ctrl-A x ends the run, Ctrl-A h lists the escapes, Ctrl-A
Ctrl-A sends a Ctrl-A (QEMU's escapes).  Input waits on the host side while the guest's FIFO is
full.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable

import trio

from rvh.errors import ConfigError

CTRL_A = 0x01
ESCAPE_EXIT = ord("x")
ESCAPE_HELP = ord("h")
ESCAPE_SAVE = ord("s")  # QEMU's C-a s saves disk data; rvh saves the whole VM (--save FILE)
# the terminal is in raw mode while the escapes work: lines end in CR LF
ESCAPE_HELP_TEXT = (
    b"\r\nC-a h    print this help\r\nC-a x    exit rvh\r\n"
    b"C-a s    save the VM to the --save file and go on\r\nC-a C-a  send C-a to the guest\r\n"
)


def serial_output(spec: str) -> tuple[Callable[[bytes], None], bool]:
    """``stdio``, ``file:PATH`` or ``null`` -> (output function, whether stdin feeds input)."""
    if spec == "stdio":
        stream = sys.stdout.buffer

        def write(data: bytes) -> None:
            try:
                stream.write(data)
                stream.flush()
            except BrokenPipeError:
                # the reader went away (rvh run ... | head): what is still buffered, and what
                # the interpreter flushes at exit, goes nowhere instead of failing again
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
                raise

        return write, True
    if spec == "null":
        return (lambda data: None), False
    if spec.startswith("file:") and len(spec) > 5:
        path = spec[5:]
        try:
            handle = open(path, "wb", buffering=0)  # noqa: SIM115 - lives as long as the run
        except OSError as error:
            raise ConfigError(f"--serial {spec}: cannot open {path} ({error.strerror})") from None

        def write_file(data: bytes) -> None:
            handle.write(data)

        write_file.close = handle.close  # type: ignore[attr-defined]
        return write_file, False
    raise ConfigError(f"--serial {spec!r}: use stdio, file:PATH or null")


class ConsoleInput:
    """Reads the host's stdin and feeds the UART; ``live`` while more input can come."""

    name = "console"

    def __init__(
        self,
        feed: Callable[[bytes], None],
        space: Callable[[], int],
        on_exit: Callable[[], None],
        on_input: Callable[[], None],
        fd: int | None = None,
        help_out: Callable[[bytes], None] | None = None,
        save: Callable[[], None] | None = None,
    ) -> None:
        self.feed = feed
        self.save = save
        self.help_out = help_out or _write_stderr
        self.space = space
        self.on_exit = on_exit
        self.on_input = on_input
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.live = True
        self.pending: deque[int] = deque()
        self.bytes_read = 0
        self._escape = False

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            is_tty = os.isatty(self.fd)
        except OSError:
            self.live = False
            task_status.started()
            return
        saved = None
        if is_tty:
            import termios
            import tty

            saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        stream = trio.lowlevel.FdStream(os.dup(self.fd))
        task_status.started()
        try:
            async with stream:
                while True:
                    data = await stream.receive_some(4096)
                    if not data:
                        self.live = False
                        return
                    self.bytes_read += len(data)
                    self._accept(data, escapes=is_tty)
                    await self._drain()
        finally:
            if saved is not None:
                import termios

                termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)

    def _accept(self, data: bytes, escapes: bool) -> None:
        for byte in data:
            if escapes and self._escape:
                self._escape = False
                if byte == ESCAPE_EXIT:
                    self.on_exit()
                    return
                if byte == ESCAPE_HELP:
                    self.help_out(ESCAPE_HELP_TEXT)
                    continue
                if byte == ESCAPE_SAVE and self.save is not None:
                    self.save()
                    continue
                self.pending.append(byte)
            elif escapes and byte == CTRL_A:
                self._escape = True
            else:
                self.pending.append(byte)

    async def _drain(self) -> None:
        """Move pending bytes into the guest's FIFO as it makes room."""
        while self.pending:
            room = self.space()
            if room:
                chunk = bytes(self.pending.popleft() for _ in range(min(room, len(self.pending))))
                self.feed(chunk)
                self.on_input()
            else:
                await trio.sleep(0.001)

    def statistics(self) -> dict[str, int]:
        return {"bytes_read": self.bytes_read, "queued": len(self.pending)}


def _write_stderr(data: bytes) -> None:
    sys.stderr.buffer.write(data)
    sys.stderr.buffer.flush()

"""HTIF, the host-target interface of Spike and the riscv-tests (riscv-isa-sim's ``fesvr``).

A guest with a ``tohost`` symbol talks to the host by writing a 64-bit command there:
bits 63:56 device, 55:48 command, 47:0 payload.  Device 0 command 0 with an odd payload ends
the run: ``payload >> 1`` is the exit code (so ``tohost = 1`` is a pass).  Device 0 with an even
payload points at a syscall frame (``magic_mem``: eight words, number then arguments), of which
write (64) and exit (93) are served.  Device 1 command 1 prints the low byte on the console.
After serving a command the host clears tohost and, for the console and syscalls, acknowledges in
``fromhost``.
"""

from __future__ import annotations

from collections.abc import Callable

from rvh.bus import Bus, BusFault

SYS_WRITE = 64
SYS_EXIT = 93


class Htif:
    name = "htif"

    def __init__(
        self,
        bus: Bus,
        tohost: int,
        fromhost: int | None,
        output: Callable[[bytes], None],
        power_off: Callable[[int, str], None],
    ) -> None:
        self.bus = bus
        self.tohost = tohost
        self.fromhost = fromhost
        self.output = output
        self.power_off = power_off
        self.commands = 0

    def service(self) -> None:
        """Handle a write to tohost (the kernel exits with Exit.HTIF after one)."""
        value = self.bus.read_u64(self.tohost)
        if value == 0:
            return
        self.commands += 1
        device = value >> 56
        command = (value >> 48) & 0xFF
        payload = value & ((1 << 48) - 1)
        self.bus.write_u64(self.tohost, 0)
        if device == 0 and command == 0:
            if payload & 1:
                code = payload >> 1
                self.power_off(code, "htif: pass" if code == 0 else f"htif: fail {code}")
            else:
                self._syscall(payload)
        elif device == 1 and command == 1:
            self.output(bytes((payload & 0xFF,)))
            self._acknowledge(value)

    def _syscall(self, frame: int) -> None:
        try:
            words = [self.bus.read_u64(frame + 8 * i) for i in range(4)]
        except BusFault:
            self.power_off(1, f"htif: syscall frame at {frame:#x} is outside RAM")
            return
        number, arg0, arg1, arg2 = words
        result = -38  # ENOSYS
        if number == SYS_WRITE and arg0 in (1, 2):
            try:
                self.output(self.bus.read_bytes(arg1, arg2))
                result = arg2
            except BusFault:
                result = -14  # EFAULT
        elif number == SYS_EXIT:
            self.power_off(arg0 & 0xFFFFFFFF, f"htif: exit {arg0}")
            return
        self.bus.write_u64(frame, result)
        self._acknowledge(1)

    def _acknowledge(self, value: int) -> None:
        if self.fromhost is not None:
            self.bus.write_u64(self.fromhost, value)

    def statistics(self) -> dict[str, int]:
        return {"commands": self.commands}

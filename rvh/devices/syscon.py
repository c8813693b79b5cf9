"""The virt board's test device ("sifive,test0", reached through syscon-poweroff/-reboot).

A 32-bit write to offset 0: 0x5555 powers off with status 0; 0x3333 | code << 16 powers off
with failure status ``code``; 0x7777 resets.  Reads return 0.
"""

from __future__ import annotations

from collections.abc import Callable

FINISHER_PASS = 0x5555
FINISHER_FAIL = 0x3333
FINISHER_RESET = 0x7777


class SiFiveTestDevice:
    name = "test"

    def __init__(self, power_off: Callable[[int, str], None], reset: Callable[[], None]) -> None:
        self.power_off = power_off
        self.reset = reset

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != 0:
            return
        command = value & 0xFFFF
        if command == FINISHER_PASS:
            self.power_off(0, "test device: pass")
        elif command == FINISHER_FAIL:
            code = (value >> 16) & 0xFFFF
            self.power_off(code, f"test device: fail {code}")
        elif command == FINISHER_RESET:
            self.reset()

"""The goldfish real-time clock ("google,goldfish-rtc"), where QEMU's virt board has it.

Android emulator's RTC, as QEMU models it (Linux: drivers/rtc/rtc-goldfish.c).  32-bit
registers; time is in nanoseconds since the Unix epoch:

    0x00 TIME_LOW         read: low half of now; latches the high half for TIME_HIGH
                          write: sets the time to (written TIME_HIGH << 32) | value
    0x04 TIME_HIGH        read: the latched high half; write: held for TIME_LOW
    0x08 ALARM_LOW        write: arms the alarm at (written ALARM_HIGH << 32) | value
    0x0c ALARM_HIGH       write: held for ALARM_LOW
    0x10 IRQ_ENABLED      read/write: the alarm raises the interrupt line when 1
    0x14 CLEAR_ALARM      write: disarms the alarm
    0x18 ALARM_STATUS     read: 1 while an alarm is armed
    0x1c CLEAR_INTERRUPT  write: lowers the interrupt line

The clock is ``base`` (ns since the epoch at power-on: the host's time, or a fixed date for
reproducible runs) plus the machine's virtual time since power-on, so guest time and the RTC
agree.  An armed alarm is checked whenever the guest touches the device and when the
machine polls it (:meth:`poll`), and fires once its time has passed.
"""

from __future__ import annotations

from collections.abc import Callable

TIME_LOW = 0x00
TIME_HIGH = 0x04
ALARM_LOW = 0x08
ALARM_HIGH = 0x0C
IRQ_ENABLED = 0x10
CLEAR_ALARM = 0x14
ALARM_STATUS = 0x18
CLEAR_INTERRUPT = 0x1C

_MASK32 = 0xFFFF_FFFF
_MASK64 = (1 << 64) - 1


class GoldfishRtc:
    name = "rtc"

    def __init__(
        self, base_ns: int, elapsed_ns: Callable[[], int], irq: Callable[[bool], None]
    ) -> None:
        self.base_ns = base_ns
        self.elapsed_ns = elapsed_ns
        self.irq = irq
        self.offset_ns = 0  # what the guest's writes of the time moved the clock by
        self.time_high_latch = 0
        self.time_high_written = 0
        self.alarm_high_written = 0
        self.alarm_ns: int | None = None
        self.irq_enabled = 0
        self.irq_pending = False

    def save_state(self) -> dict[str, object]:
        """The clock's base goes with the VM: a restored guest reads the time line it had."""
        return {
            "base_ns": self.base_ns,
            "offset_ns": self.offset_ns,
            "latches": [self.time_high_latch, self.time_high_written, self.alarm_high_written],
            "alarm_ns": self.alarm_ns,
            "irq": [self.irq_enabled, self.irq_pending],
        }

    def restore_state(self, saved: dict) -> None:
        """The registers as saved; the interrupt line is the PLIC's saved level already."""
        self.base_ns = int(saved["base_ns"])
        self.offset_ns = int(saved["offset_ns"])
        self.time_high_latch, self.time_high_written, self.alarm_high_written = (
            int(value) for value in saved["latches"]
        )
        alarm = saved["alarm_ns"]
        self.alarm_ns = None if alarm is None else int(alarm)
        self.irq_enabled = int(saved["irq"][0])
        self.irq_pending = bool(saved["irq"][1])

    def now_ns(self) -> int:
        return (self.base_ns + self.elapsed_ns() + self.offset_ns) & _MASK64

    def poll(self) -> None:
        """Fire the alarm if its time has come."""
        if self.alarm_ns is not None and self.now_ns() >= self.alarm_ns:
            self.alarm_ns = None
            self.irq_pending = True
            if self.irq_enabled:
                self.irq(True)

    def read(self, offset: int, size: int) -> int:
        self.poll()
        if offset == TIME_LOW:
            now = self.now_ns()
            self.time_high_latch = now >> 32
            return now & _MASK32
        if offset == TIME_HIGH:
            return self.time_high_latch
        if offset == IRQ_ENABLED:
            return self.irq_enabled
        if offset == ALARM_STATUS:
            return 1 if self.alarm_ns is not None else 0
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        value &= _MASK32
        if offset == TIME_LOW:
            wanted = self.time_high_written << 32 | value
            self.offset_ns += wanted - self.now_ns()
        elif offset == TIME_HIGH:
            self.time_high_written = value
        elif offset == ALARM_LOW:
            self.alarm_ns = self.alarm_high_written << 32 | value
        elif offset == ALARM_HIGH:
            self.alarm_high_written = value
        elif offset == IRQ_ENABLED:
            self.irq_enabled = value & 1
            self.irq(bool(self.irq_enabled and self.irq_pending))
        elif offset == CLEAR_ALARM:
            self.alarm_ns = None
        elif offset == CLEAR_INTERRUPT:
            self.irq_pending = False
            self.irq(False)
        self.poll()

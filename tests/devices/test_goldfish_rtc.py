"""The goldfish RTC: time in ns since the epoch through TIME_LOW/TIME_HIGH (the high half
latched by the low read), setting the time, and the alarm's interrupt."""

from __future__ import annotations

from rvh.devices.goldfish_rtc import (
    ALARM_HIGH,
    ALARM_LOW,
    ALARM_STATUS,
    CLEAR_INTERRUPT,
    IRQ_ENABLED,
    TIME_HIGH,
    TIME_LOW,
    GoldfishRtc,
)

BASE = 1_740_830_400 * 10**9  # 2025-03-01 12:00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.elapsed = 0
        self.levels: list[bool] = []


def rtc_with_clock() -> tuple[GoldfishRtc, Clock]:
    clock = Clock()
    return GoldfishRtc(BASE, lambda: clock.elapsed, clock.levels.append), clock


def read_time(rtc: GoldfishRtc) -> int:
    low = rtc.read(TIME_LOW, 4)
    return rtc.read(TIME_HIGH, 4) << 32 | low


def test_time_is_the_base_plus_virtual_time():
    rtc, clock = rtc_with_clock()
    assert read_time(rtc) == BASE
    clock.elapsed = 1_500_000_000
    assert read_time(rtc) == BASE + 1_500_000_000


def test_the_high_half_is_latched_by_the_low_read():
    rtc, clock = rtc_with_clock()
    clock.elapsed = (1 << 32) - (BASE & 0xFFFF_FFFF) - 1  # the low half is about to wrap
    low = rtc.read(TIME_LOW, 4)
    clock.elapsed += 10  # the high half changes between the two reads
    assert (rtc.read(TIME_HIGH, 4) << 32 | low) == BASE + (1 << 32) - (BASE & 0xFFFF_FFFF) - 1


def test_the_guest_sets_the_time_high_half_first():
    rtc, clock = rtc_with_clock()
    wanted = 1_000_000_000 * 10**9
    rtc.write(TIME_HIGH, 4, wanted >> 32)
    rtc.write(TIME_LOW, 4, wanted & 0xFFFF_FFFF)
    assert read_time(rtc) == wanted
    clock.elapsed += 5
    assert read_time(rtc) == wanted + 5


def test_an_alarm_raises_the_line_once_its_time_has_passed():
    rtc, clock = rtc_with_clock()
    rtc.write(IRQ_ENABLED, 4, 1)
    alarm = BASE + 1000
    rtc.write(ALARM_HIGH, 4, alarm >> 32)
    rtc.write(ALARM_LOW, 4, alarm & 0xFFFF_FFFF)
    assert rtc.read(ALARM_STATUS, 4) == 1
    assert True not in clock.levels
    clock.elapsed = 999
    rtc.poll()
    assert True not in clock.levels
    clock.elapsed = 1000
    rtc.poll()
    assert clock.levels[-1] is True
    assert rtc.read(ALARM_STATUS, 4) == 0
    rtc.write(CLEAR_INTERRUPT, 4, 1)
    assert clock.levels[-1] is False


def test_its_state_goes_with_a_vm_file():
    # a restored machine reads the time line the saved one had, not the restoring host's clock
    rtc, clock = rtc_with_clock()
    clock.elapsed = 5_000
    rtc.write(TIME_HIGH, 4, 0x12)
    rtc.write(TIME_LOW, 4, 0x3456_7890)
    rtc.write(ALARM_HIGH, 4, 0x13)
    rtc.write(ALARM_LOW, 4, 0)
    rtc.write(IRQ_ENABLED, 4, 1)
    saved = rtc.save_state()
    other, other_clock = rtc_with_clock()
    other.base_ns = 999  # as if made on another host at another time
    other_clock.elapsed = 5_000
    other.restore_state(saved)
    assert read_time(other) == read_time(rtc) == 0x12_3456_7890
    assert other.read(ALARM_STATUS, 4) == 1 and other.read(IRQ_ENABLED, 4) == 1

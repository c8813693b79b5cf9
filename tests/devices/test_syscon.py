from rvh.devices.syscon import SiFiveTestDevice


def test_finisher_commands():
    events = []
    device = SiFiveTestDevice(
        lambda code, why: events.append(("off", code)), lambda: events.append(("reset",))
    )
    device.write(0, 4, 0x5555)
    device.write(0, 4, (7 << 16) | 0x3333)
    device.write(0, 4, 0x7777)
    device.write(0, 4, 0x1234)  # unknown: ignored
    device.write(4, 4, 0x5555)  # other offsets: ignored
    assert events == [("off", 0), ("off", 7), ("reset",)]
    assert device.read(0, 4) == 0

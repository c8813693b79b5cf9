"""The QEMU spellings of --drive and --netdev."""

import pytest

from rvh.devices.virtio.options import (
    DriveOptions,
    NetdevOptions,
    parse_drive,
    parse_mac,
    parse_netdev,
    split_options,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file=disk.img", DriveOptions("disk.img")),
        (
            "file=disk.img,format=raw,readonly=on,cache=writethrough",
            DriveOptions("disk.img", readonly=True, cache="writethrough"),
        ),
        ("file=a.img,readonly", DriveOptions("a.img", readonly=True)),
        ("readonly=off,file=a.img,cache=writeback", DriveOptions("a.img")),
        ("file=a,,b.img,if=virtio,id=d0", DriveOptions("a,b.img", id="d0")),
        ("file=a.img,,", DriveOptions("a.img,")),
        ("file=a.img,if=pv,readonly=on", DriveOptions("a.img", readonly=True, pv=True)),
        (
            "file=/x/y.img,serial=ABC-123,readonly=yes",
            DriveOptions("/x/y.img", readonly=True, serial="ABC-123"),
        ),
    ],
)
def test_parse_drive(text, expected):
    assert parse_drive(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format=raw", "file=IMAGE is required"),
        ("file=", "file=IMAGE is required"),
        ("file=a.img,speed=9", "unknown option 'speed'"),
        ("file=a.img,readonly=maybe", "readonly=maybe: expected on or off"),
        ("file=a.img,format=qcow2", "only raw"),
        ("file=a.img,cache=none", "expected writeback or writethrough"),
        ("file=a.img,if=ide", "if=ide: expected virtio or pv"),
        ("file=a.img,file=b.img", "given twice"),
        ("file=a.img,", "empty item"),
        ("file=a.img,serial=" + "x" * 21, "at most 20"),
        ("file=a.img,cache", "expected KEY=VALUE"),
    ],
)
def test_bad_drive(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_drive(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hub,id=n0", NetdevOptions("hub", "n0")),
        ("hub,id=n0,pcap=x.pcap", NetdevOptions("hub", "n0", pcap="x.pcap")),
        (
            "socket,id=n1,udp=127.0.0.1:5000,localaddr=127.0.0.1:5001,pcap=x.pcap",
            NetdevOptions("socket", "n1", ("127.0.0.1", 5000), ("127.0.0.1", 5001), "x.pcap"),
        ),
        (
            "socket,id=n1,udp=localhost:5000,localaddr=[::1]:0",
            NetdevOptions("socket", "n1", ("localhost", 5000), ("::1", 0)),
        ),
        (
            "hub,id=n0,mac=52:54:00:AB:cd:01",
            NetdevOptions("hub", "n0", mac=bytes.fromhex("525400abcd01")),
        ),
        ("type=hub,id=n0", NetdevOptions("hub", "n0")),
        ("hub,id=n0,if=pv", NetdevOptions("hub", "n0", pv=True)),
        ("hub,id=n0,if=virtio", NetdevOptions("hub", "n0")),
    ],
)
def test_parse_netdev(text, expected):
    assert parse_netdev(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tap,id=n0", "unknown type"),
        ("hub", "id=NAME is required"),
        ("hub,id=", "id=NAME is required"),
        ("hub,id=n0,udp=1.2.3.4:5", "unknown option 'udp'"),
        ("socket,id=n1,localaddr=127.0.0.1:1", "needs udp=HOST:PORT"),
        ("socket,id=n1,udp=127.0.0.1:1", "needs localaddr"),
        ("socket,id=n1,udp=127.0.0.1,localaddr=127.0.0.1:1", "expected HOST:PORT"),
        ("socket,id=n1,udp=127.0.0.1:0,localaddr=127.0.0.1:1", "port out of range"),
        ("socket,id=n1,udp=127.0.0.1:70000,localaddr=127.0.0.1:1", "port out of range"),
        ("socket,id=n1,listen=:5000", "unknown option 'listen'"),
        ("hub,id=n0,mac=01:00:5e:00:00:01", "multicast"),
        ("hub,id=n0,mac=52:54:00:12:34", "six hex bytes"),
        ("hub,id=n0,pcap=", "expected a file name"),
        ("hub,id=n0,if=e1000", "if=e1000: expected virtio or pv"),
    ],
)
def test_bad_netdev(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_netdev(text)
    assert "\n" not in str(info.value)


def test_split_options_doubled_commas():
    assert split_options("a=1,,2,b=3") == ["a=1,2", "b=3"]
    assert split_options("") == [""]


def test_parse_mac():
    assert parse_mac("52:54:00:12:34:56") == bytes.fromhex("525400123456")

"""The remote protocol's framing: checksums, escapes, acks, Ctrl-C and bad input."""

from __future__ import annotations

from rvh.gdb.packets import (
    Ack,
    BadPacket,
    Interrupt,
    Packet,
    PacketReader,
    checksum,
    frame,
    unescape,
)


def test_frame_has_the_modulo_256_checksum() -> None:
    assert frame(b"OK") == b"$OK#9a"
    assert checksum(b"") == 0
    assert frame(b"") == b"$#00"


def test_special_bytes_are_escaped_and_come_back() -> None:
    data = b"a#b$c}d*e"
    framed = frame(data)
    assert b"}\x03" in framed  # '#' ^ 0x20
    reader = PacketReader()
    assert reader.feed(framed) == [Packet(data)]
    assert unescape(b"}]") == b"}"


def test_packets_split_anywhere_and_mixed_with_acks_and_interrupts() -> None:
    stream = b"+" + frame(b"qSupported:xmlRegisters=i386") + b"\x03-" + frame(b"g")
    reader = PacketReader()
    events = []
    for i in range(len(stream)):
        events += reader.feed(stream[i : i + 1])
    assert events == [
        Ack(True),
        Packet(b"qSupported:xmlRegisters=i386"),
        Interrupt(),
        Ack(False),
        Packet(b"g"),
    ]


def test_a_wrong_checksum_is_a_bad_packet_and_the_next_one_is_read() -> None:
    reader = PacketReader()
    events = reader.feed(b"$g#00" + frame(b"?"))
    assert isinstance(events[0], BadPacket)
    assert "checksum" in events[0].why
    assert events[1] == Packet(b"?")
    assert isinstance(reader.feed(b"$m0,4#zz")[0], BadPacket)


def test_an_endless_packet_is_cut_off_not_buffered() -> None:
    reader = PacketReader(limit=64)
    events = reader.feed(b"$" + b"M" * 1000)
    assert len(events) == 1 and isinstance(events[0], BadPacket)
    assert "longer than 64" in events[0].why
    # the rest of that packet is noise until the next '$'
    assert reader.feed(b"#00" + frame(b"c")) == [Packet(b"c")]


def test_a_packet_cut_short_by_another() -> None:
    events = PacketReader().feed(b"$m80000000" + frame(b"s"))
    assert isinstance(events[0], BadPacket)
    assert events[1] == Packet(b"s")

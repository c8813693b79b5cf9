"""The framing of the GDB remote serial protocol: ``$data#cc`` packets, acks, Ctrl-C.

A :class:`PacketReader` takes bytes as they come off the socket, in pieces of any size, and
hands back events: a packet's payload, an ack or nak, an interrupt (a 0x03 byte between
packets), or a bad packet (wrong checksum, or longer than anything gdb may send: the stub
advertises ``PacketSize`` and a client that ignores it is cut off, not buffered for ever).
"""

from __future__ import annotations

from dataclasses import dataclass

PACKET_SIZE = 0x4000  # the largest packet the stub takes, advertised in qSupported
INTERRUPT = b"\x03"


@dataclass(frozen=True)
class Packet:
    data: bytes


@dataclass(frozen=True)
class Ack:
    ok: bool  # '+' or '-'


@dataclass(frozen=True)
class Interrupt:
    pass


@dataclass(frozen=True)
class BadPacket:
    why: str


Event = Packet | Ack | Interrupt | BadPacket


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def frame(data: bytes) -> bytes:
    """``data`` as a packet; '#', '$', '}' and '*' are escaped (0x7d, then byte ^ 0x20)."""
    escaped = bytearray()
    for byte in data:
        if byte in b"#$}*":
            escaped += bytes((0x7D, byte ^ 0x20))
        else:
            escaped.append(byte)
    return b"$" + bytes(escaped) + b"#%02x" % checksum(bytes(escaped))


def unescape(data: bytes) -> bytes:
    out = bytearray()
    escape = False
    for byte in data:
        if escape:
            out.append(byte ^ 0x20)
            escape = False
        elif byte == 0x7D:
            escape = True
        else:
            out.append(byte)
    return bytes(out)


class PacketReader:
    def __init__(self, limit: int = 2 * PACKET_SIZE) -> None:
        self.limit = limit
        self._packet: bytearray | None = None  # inside $...# once not None
        self._checksum = b""  # the hex digits after '#'
        self._in_checksum = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for byte in data:
            if self._packet is None:
                if byte == ord("$"):
                    self._packet = bytearray()
                    self._in_checksum = False
                    self._checksum = b""
                elif byte == 0x03:
                    events.append(Interrupt())
                elif byte in b"+-":
                    events.append(Ack(byte == ord("+")))
                # anything else between packets is noise (gdb sends none)
                continue
            if self._in_checksum:
                self._checksum += bytes((byte,))
                if len(self._checksum) == 2:
                    events.append(self._finish())
                continue
            if byte == ord("#"):
                self._in_checksum = True
            elif byte == ord("$"):
                # a new packet before the old one ended: the old one was cut short
                events.append(BadPacket("packet cut short by another"))
                self._packet = bytearray()
            elif len(self._packet) >= self.limit:
                events.append(BadPacket(f"packet longer than {self.limit} bytes"))
                self._packet = None
            else:
                self._packet.append(byte)
        return events

    def _finish(self) -> Event:
        body = bytes(self._packet or b"")
        self._packet = None
        try:
            expected = int(self._checksum, 16)
        except ValueError:
            return BadPacket(f"checksum {self._checksum!r} is not hex")
        if expected != checksum(body):
            return BadPacket(f"checksum {expected:#04x}, computed {checksum(body):#04x}")
        return Packet(unescape(body))

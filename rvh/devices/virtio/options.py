"""The QEMU spellings of ``--drive`` and ``--netdev``, parsed into dataclasses.

``--drive file=IMG[,format=raw][,readonly=on][,cache=writeback|writethrough][,id=ID]
[,serial=STR][,if=virtio][,snapshot=on|overlay=FILE]`` and
``--netdev hub,id=ID[,pcap=FILE][,mac=MAC]`` or
``--netdev socket,id=ID,udp=HOST:PORT,localaddr=HOST:PORT[,pcap=FILE][,mac=MAC]``.

As in QEMU's option syntax, items are separated by commas and a doubled comma stands for a comma
inside a value (``file=a,,b.img`` names ``a,b.img``); booleans are on/off, yes/no, true/false,
and a bare ``readonly`` means ``readonly=on``.  ``mac=`` is an rvh extension (QEMU puts the MAC on
``-device``); ``pcap=`` stands for QEMU's ``-object filter-dump``.  Every mistake is a one-line
``ValueError`` naming the offending item.
"""

from __future__ import annotations

from dataclasses import dataclass

DRIVE_KEYS = ("file", "format", "readonly", "cache", "id", "serial", "if", "snapshot", "overlay")
CACHE_MODES = ("writeback", "writethrough")
SERIAL_LENGTH = 20  # 5.2.6: the device ID string is at most 20 bytes
NETDEV_KEYS = {
    "hub": ("id", "pcap", "mac", "if"),
    "socket": ("id", "udp", "localaddr", "pcap", "mac", "if"),
}
_TRUE = ("on", "yes", "true")
_FALSE = ("off", "no", "false")


@dataclass(frozen=True)
class DriveOptions:
    file: str
    format: str = "raw"
    readonly: bool = False
    cache: str = "writeback"
    id: str | None = None
    serial: str | None = None
    # snapshot=on: writes go to a throw-away overlay; overlay=FILE: to a kept one
    snapshot: bool = False
    overlay: str | None = None
    # if=pv: served by the built-in SBI's platform I/O extension instead of a virtio slot
    pv: bool = False


@dataclass(frozen=True)
class NetdevOptions:
    kind: str  # "hub" or "socket"
    id: str
    udp: tuple[str, int] | None = None  # socket: the peer to send frames to
    localaddr: tuple[str, int] | None = None  # socket: the address to receive on
    pcap: str | None = None
    mac: bytes | None = None
    pv: bool = False  # if=pv (an rvh addition): a pv NIC of the platform I/O extension


def split_options(text: str) -> list[str]:
    """Split at single commas; ',,' is a literal comma."""
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == ",":
            if text.startswith(",,", i):
                current.append(",")
                i += 2
                continue
            items.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    items.append("".join(current))
    return items


def parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{key}={value}: expected on or off")


def parse_hostport(key: str, value: str, *, allow_zero: bool = False) -> tuple[str, int]:
    host, colon, port_text = value.rpartition(":")
    if not colon or not host or not port_text.isdigit():
        raise ValueError(f"{key}={value}: expected HOST:PORT")
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise ValueError(f"{key}={value}: port out of range")
    return host.strip("[]"), port


def parse_mac(value: str) -> bytes:
    parts = value.split(":")
    try:
        if len(parts) != 6 or any(len(p) != 2 for p in parts):
            raise ValueError
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"mac={value}: expected six hex bytes like 52:54:00:12:34:56") from None
    if mac[0] & 1:
        raise ValueError(f"mac={value}: a multicast address cannot name a NIC")
    return mac


def _pairs(text: str, what: str, keys: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in split_options(text):
        if not item:
            raise ValueError(f"{what} {text!r}: empty item")
        key, equals, value = item.partition("=")
        if not equals:
            if key in ("readonly", "snapshot") and key in keys:
                value = "on"  # QEMU's short form of a boolean
            else:
                raise ValueError(f"{what} item {item!r}: expected KEY=VALUE")
        if key not in keys:
            raise ValueError(f"{what}: unknown option {key!r} (known: {', '.join(keys)})")
        if key in found:
            raise ValueError(f"{what}: {key} given twice")
        found[key] = value
    return found


def parse_drive(text: str) -> DriveOptions:
    """``file=IMG,format=raw,readonly=on,cache=writeback`` -> DriveOptions."""
    found = _pairs(text, "--drive", DRIVE_KEYS)
    if not found.get("file"):
        raise ValueError(f"--drive {text!r}: file=IMAGE is required")
    image_format = found.get("format", "raw")
    if image_format != "raw":
        raise ValueError(f"--drive format={image_format}: only raw images are supported")
    if found.get("if", "virtio") not in ("virtio", "none", "pv"):
        raise ValueError(f"--drive if={found['if']}: expected virtio or pv")
    cache = found.get("cache", "writeback")
    if cache not in CACHE_MODES:
        raise ValueError(f"--drive cache={cache}: expected writeback or writethrough")
    snapshot = parse_bool("snapshot", found["snapshot"]) if "snapshot" in found else False
    overlay = found.get("overlay")
    if overlay is not None and not overlay:
        raise ValueError("--drive overlay=: expected a file name")
    if snapshot and overlay:
        raise ValueError("--drive: snapshot=on and overlay= both name where writes go")
    serial = found.get("serial")
    if serial is not None and (len(serial.encode()) > SERIAL_LENGTH or not serial.isascii()):
        raise ValueError(f"--drive serial={serial}: at most {SERIAL_LENGTH} ASCII characters")
    return DriveOptions(
        file=found["file"],
        format=image_format,
        readonly=parse_bool("readonly", found["readonly"]) if "readonly" in found else False,
        cache=cache,
        id=found.get("id"),
        serial=serial,
        snapshot=snapshot,
        overlay=overlay,
        pv=found.get("if") == "pv",
    )


def parse_netdev(text: str) -> NetdevOptions:
    """``hub,id=n0`` or ``socket,id=n1,udp=H:P,localaddr=H:P[,pcap=F]`` -> NetdevOptions."""
    kind, _, rest = text.partition(",")
    if kind.startswith("type="):
        kind = kind[len("type=") :]
    if kind not in NETDEV_KEYS:
        raise ValueError(f"--netdev {kind!r}: unknown type (supported: hub, socket)")
    found = _pairs(rest, f"--netdev {kind}", NETDEV_KEYS[kind]) if rest else {}
    if not found.get("id"):
        raise ValueError(f"--netdev {text!r}: id=NAME is required")
    udp = localaddr = None
    if kind == "socket":
        if "udp" not in found:
            raise ValueError(
                f"--netdev {text!r}: socket needs udp=HOST:PORT (only UDP is supported)"
            )
        if "localaddr" not in found:
            raise ValueError(f"--netdev {text!r}: socket,udp= needs localaddr=HOST:PORT")
        udp = parse_hostport("udp", found["udp"])
        localaddr = parse_hostport("localaddr", found["localaddr"], allow_zero=True)
    pcap = found.get("pcap")
    if pcap is not None and not pcap:
        raise ValueError("--netdev pcap=: expected a file name")
    if found.get("if", "virtio") not in ("virtio", "pv"):
        raise ValueError(f"--netdev if={found['if']}: expected virtio or pv")
    return NetdevOptions(
        kind=kind,
        id=found["id"],
        udp=udp,
        localaddr=localaddr,
        pcap=pcap,
        mac=parse_mac(found["mac"]) if "mac" in found else None,
        pv=found.get("if") == "pv",
    )

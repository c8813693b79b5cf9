"""Flattened device tree (DTB) writer, reader and the rvh ``virt`` board tree.

Everything here follows the Devicetree Specification v0.4:

* chapter 2 (2.2.1 node names, 2.2.3 path names, 2.2.4 property names and
  value encodings, 2.3 standard properties: compatible, model, phandle,
  status, #address-cells/#size-cells, reg, ranges, device_type; 2.4
  interrupts, interrupt-parent, interrupts-extended);
* chapter 3 (device node requirements: 3.2 root, 3.4 /memory, 3.6 /chosen,
  3.7 /cpus, 3.8 /cpus/cpu*) and 4.2 (serial devices, ns16550);
* chapter 5, the flattened format itself: 5.2 header (big-endian, magic
  0xd00dfeed, version 17, last_comp_version 16, boot_cpuid_phys), 5.3 memory
  reservation block (u64 address/size pairs ended by a 0/0 entry, 8-byte
  aligned), 5.4 structure block (tokens FDT_BEGIN_NODE, FDT_END_NODE,
  FDT_PROP, FDT_NOP and FDT_END, every token 4-byte aligned), 5.5 strings
  block (property names, NUL-terminated and deduplicated) and 5.6 alignment;
* chapter 6 (DTS source format), for :func:`format_dts`.

Generic part: :class:`DeviceTree` holds a tree of :class:`Node` objects whose
properties are raw big-endian byte strings set through typed helpers
(``prop_u32``, ``prop_u64``, ``prop_cells``, ``prop_str``, ``prop_strs``,
``prop_empty``, ``prop_bytes``, ``prop_reg``, ``prop_phandle``);
:meth:`DeviceTree.to_dtb` serializes it, :func:`parse_dtb` reads any DTB back
and :func:`format_dts` prints it as source that ``dtc`` accepts.

Board part: :class:`Board` and :func:`board_dtb` describe the machine the way
QEMU 7.2's ``virt`` board does (same node names, addresses, interrupt
numbers and phandle wiring), so firmware and kernels built for QEMU virt
(OpenSBI's generic platform, Linux) run unchanged.  See docs/devicetree.md.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from rvh.config import (
    CLINT_BASE,
    CLINT_SIZE,
    DEFAULT_MEMORY,
    PLIC_BASE,
    PLIC_NDEV,
    PLIC_SIZE,
    RAM_BASE,
    RTC_BASE,
    RTC_IRQ,
    RTC_SIZE,
    TEST_BASE,
    TEST_SIZE,
    TIMEBASE_HZ,
    UART0_BASE,
    UART0_CLOCK_FREQUENCY,
    UART0_IRQ,
    UART0_SIZE,
    VIRTIO_BASE,
    VIRTIO_IRQ_BASE,
    VIRTIO_SIZE,
    VIRTIO_SLOTS,
)
from rvh.devices.syscon import FINISHER_PASS, FINISHER_RESET
from rvh.isa.causes import Interrupt

__all__ = [
    "CLINT_PATH",
    "FDT_BEGIN_NODE",
    "FDT_END",
    "FDT_END_NODE",
    "FDT_LAST_COMP_VERSION",
    "FDT_MAGIC",
    "FDT_NOP",
    "FDT_PROP",
    "FDT_VERSION",
    "PLIC_PATH",
    "SOC_PATH",
    "TEST_PATH",
    "UART0_PATH",
    "Board",
    "DeviceTree",
    "FdtHeader",
    "Node",
    "PropValue",
    "board_dtb",
    "board_tree",
    "format_dts",
    "parse_dtb",
    "parse_header",
    "virtio_path",
]

# ---------------------------------------------------------------------------
# Format constants (spec 5.2, 5.4.1)
# ---------------------------------------------------------------------------

FDT_MAGIC = 0xD00DFEED
FDT_VERSION = 17
FDT_LAST_COMP_VERSION = 16

FDT_BEGIN_NODE = 0x1
FDT_END_NODE = 0x2
FDT_PROP = 0x3
FDT_NOP = 0x4
FDT_END = 0x9

_HEADER = struct.Struct(">10I")  # 5.2: ten big-endian u32 fields
_RSV_ENTRY = struct.Struct(">QQ")  # 5.3: u64 address, u64 size
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

# 2.2.1: node-name characters; 2.2.4.1: property-name characters.
_NODE_NAME_RE = re.compile(r"[A-Za-z][0-9A-Za-z,._+\-]{0,30}(@[0-9A-Za-z,._+\-]+)?")
_PROP_NAME_RE = re.compile(r"[0-9A-Za-z,._+?#\-]{1,31}")

# ---------------------------------------------------------------------------
# Node paths of the virt board (its memory map and wiring are rvh.config's)
# ---------------------------------------------------------------------------

SOC_PATH = "/soc"
CLINT_PATH = f"{SOC_PATH}/clint@{CLINT_BASE:x}"
PLIC_PATH = f"{SOC_PATH}/plic@{PLIC_BASE:x}"
UART0_PATH = f"{SOC_PATH}/serial@{UART0_BASE:x}"
TEST_PATH = f"{SOC_PATH}/test@{TEST_BASE:x}"

_MMU_TYPES = frozenset({"riscv,sv39", "riscv,sv48", "riscv,sv57", "riscv,none"})
_ISA_RE = re.compile(r"rv64[ig][a-z]*(_[a-z][a-z0-9]*)*")
_PAGE = 0x1000
_MAX_HARTS = 8

# ---------------------------------------------------------------------------
# Value encoding helpers (2.2.4.2)
# ---------------------------------------------------------------------------


def _u32(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: expected an int, got {type(value).__name__}")
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{what}: {value:#x} does not fit in a u32 cell")
    return _U32.pack(value)


def _u64(value: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: expected an int, got {type(value).__name__}")
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{what}: {value:#x} does not fit in a u64")
    return _U64.pack(value)


def _string(value: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected a str, got {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{what}: strings may not contain NUL")
    return value.encode("utf-8") + b"\0"


def _number_cells(value: int, ncells: int, what: str) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what}: expected an int, got {type(value).__name__}")
    if value < 0 or value >> (32 * ncells):
        raise ValueError(f"{what}: {value:#x} does not fit in {ncells} cell(s)")
    return value.to_bytes(4 * ncells, "big")


def _align(n: int, a: int) -> int:
    return (n + a - 1) & -a


# ---------------------------------------------------------------------------
# Tree
# ---------------------------------------------------------------------------


class Node:
    """One device tree node: ordered properties (raw bytes) and children.

    Start from ``DeviceTree().root`` and grow the tree with :meth:`add`.  Every
    ``prop_*`` setter replaces an existing property of the same name in place
    and returns the node, so calls can be chained.
    """

    __slots__ = ("_by_name", "_tree", "children", "name", "parent", "props")

    def __init__(self, name: str, tree: DeviceTree, parent: Node | None) -> None:
        self.name = name
        self.parent = parent
        self.props: dict[str, bytes] = {}
        self.children: list[Node] = []
        self._tree = tree
        self._by_name: dict[str, Node] = {}

    def __repr__(self) -> str:
        return f"Node({self.path!r}, props={list(self.props)}, children={len(self.children)})"

    # -- structure ---------------------------------------------------------

    @property
    def tree(self) -> DeviceTree:
        return self._tree

    @property
    def path(self) -> str:
        """Full path (2.2.3), ``/`` for the root."""
        if self.parent is None:
            return "/"
        parent = self.parent.path
        return f"{parent}{self.name}" if parent == "/" else f"{parent}/{self.name}"

    def add(self, name: str, props: Mapping[str, PropValue] | None = None) -> Node:
        """Append a child named ``name`` (``node-name[@unit-address]``).

        ``props`` is an optional mapping applied with :meth:`set`, in order.
        """
        if not isinstance(name, str) or not _NODE_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid node name {name!r} (spec 2.2.1)")
        return self._attach(name, props)

    def _attach(self, name: str, props: Mapping[str, PropValue] | None = None) -> Node:
        if name in self._by_name:
            raise ValueError(f"node {self.path!r} already has a child {name!r}")
        child = Node(name, self._tree, self)
        self.children.append(child)
        self._by_name[name] = child
        if props:
            for key, value in props.items():
                child.set(key, value)
        return child

    def child(self, name: str) -> Node | None:
        """The direct child called exactly ``name``, or None."""
        return self._by_name.get(name)

    def remove(self, name: str) -> None:
        """Remove the child node ``name`` (KeyError when absent)."""
        node = self._by_name.pop(name)
        self.children.remove(node)

    def walk(self) -> Iterator[Node]:
        """This node and all descendants, depth first, in tree order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    # -- property setters --------------------------------------------------

    def _put(self, name: str, value: bytes) -> Node:
        if not isinstance(name, str) or not _PROP_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid property name {name!r} (spec 2.2.4.1)")
        self.props[name] = value
        return self

    def prop_bytes(self, name: str, value: bytes | bytearray) -> Node:
        """Raw byte string (``[00 11 22]`` in DTS)."""
        if not isinstance(value, bytes | bytearray):
            raise TypeError(f"{name}: expected bytes, got {type(value).__name__}")
        return self._put(name, bytes(value))

    def prop_empty(self, name: str) -> Node:
        """Empty (boolean) property such as ``interrupt-controller``."""
        return self._put(name, b"")

    def prop_u32(self, name: str, value: int) -> Node:
        return self._put(name, _u32(value, name))

    def prop_u64(self, name: str, value: int) -> Node:
        return self._put(name, _u64(value, name))

    def prop_cells(self, name: str, *cells: int | Node) -> Node:
        """``<a b c>``: u32 cells; a :class:`Node` stands for its phandle."""
        out = bytearray()
        for cell in cells:
            if isinstance(cell, Node):
                out += _U32.pack(cell.phandle())
            else:
                out += _u32(cell, name)
        return self._put(name, bytes(out))

    def prop_str(self, name: str, value: str) -> Node:
        return self._put(name, _string(value, name))

    def prop_strs(self, name: str, *values: str) -> Node:
        """String list (``"a", "b"``), e.g. ``compatible``."""
        if not values:
            raise ValueError(f"{name}: a string list needs at least one string")
        return self._put(name, b"".join(_string(v, name) for v in values))

    def prop_phandle(self, name: str, target: Node) -> Node:
        """A single phandle reference to ``target`` (allocated if needed)."""
        return self.prop_cells(name, target)

    def prop_reg(self, *regions: tuple[int, int], name: str = "reg") -> Node:
        """``reg`` from (address, size) pairs, encoded with the parent's
        ``#address-cells``/``#size-cells`` (defaults 2 and 1, spec 2.3.5)."""
        if self.parent is None:
            raise ValueError("the root node has no parent to take #address-cells from")
        acells = self.parent.get_u32("#address-cells", 2)
        scells = self.parent.get_u32("#size-cells", 1)
        out = bytearray()
        for address, size in regions:
            out += _number_cells(address, acells, f"{name} address")
            out += _number_cells(size, scells, f"{name} size")
        return self._put(name, bytes(out))

    def set(self, name: str, value: PropValue) -> Node:
        """Set a property from a Python value.

        ``True`` -> empty property, ``False`` -> property removed, ``int`` ->
        u32, ``str`` -> string, ``bytes`` -> raw, :class:`Node` -> phandle,
        sequence of ``str`` -> string list, sequence of ``int``/``Node`` ->
        cells.  Use :meth:`prop_u64` for 64-bit values.
        """
        if isinstance(value, bool):
            if value:
                return self.prop_empty(name)
            self.props.pop(name, None)
            return self
        if isinstance(value, int):
            return self.prop_u32(name, value)
        if isinstance(value, str):
            return self.prop_str(name, value)
        if isinstance(value, bytes | bytearray):
            return self.prop_bytes(name, value)
        if isinstance(value, Node):
            return self.prop_phandle(name, value)
        items = list(value)
        if items and all(isinstance(v, str) for v in items):
            return self.prop_strs(name, *(str(v) for v in items))
        cells: list[int | Node] = []
        for v in items:
            if isinstance(v, str):
                raise TypeError(f"{name}: cannot mix strings and cells")
            cells.append(v)
        return self.prop_cells(name, *cells)

    def delete_prop(self, name: str) -> None:
        """Remove property ``name`` (KeyError when absent)."""
        del self.props[name]

    # -- phandles ------------------------------------------------------------

    def phandle(self) -> int:
        """This node's phandle (2.3.3), allocating the next free one if unset."""
        existing = self.props.get("phandle")
        if existing is not None:
            if len(existing) != 4:
                raise ValueError(f"{self.path}: phandle is {len(existing)} bytes, not 4")
            return int(_U32.unpack(existing)[0])
        value = self._tree.next_free_phandle()
        self.props["phandle"] = _U32.pack(value)
        return value

    # -- property getters ----------------------------------------------------

    def get(self, name: str) -> bytes | None:
        return self.props.get(name)

    def get_u32(self, name: str, default: int | None = None) -> int:
        raw = self.props.get(name)
        if raw is None:
            if default is None:
                raise KeyError(f"{self.path}: no property {name!r}")
            return default
        if len(raw) != 4:
            raise ValueError(f"{self.path}:{name} is {len(raw)} bytes, not a u32")
        return int(_U32.unpack(raw)[0])

    def get_u64(self, name: str) -> int:
        raw = self._need(name)
        if len(raw) != 8:
            raise ValueError(f"{self.path}:{name} is {len(raw)} bytes, not a u64")
        return int(_U64.unpack(raw)[0])

    def get_cells(self, name: str) -> list[int]:
        raw = self._need(name)
        if len(raw) % 4:
            raise ValueError(f"{self.path}:{name} is {len(raw)} bytes, not whole cells")
        return [int(c) for c in struct.unpack(f">{len(raw) // 4}I", raw)]

    def get_strs(self, name: str) -> list[str]:
        raw = self._need(name)
        if not raw.endswith(b"\0"):
            raise ValueError(f"{self.path}:{name} is not NUL-terminated")
        return [s.decode("utf-8") for s in raw[:-1].split(b"\0")]

    def get_str(self, name: str) -> str:
        strs = self.get_strs(name)
        if len(strs) != 1:
            raise ValueError(f"{self.path}:{name} holds {len(strs)} strings, not one")
        return strs[0]

    def _need(self, name: str) -> bytes:
        raw = self.props.get(name)
        if raw is None:
            raise KeyError(f"{self.path}: no property {name!r}")
        return raw


PropValue: TypeAlias = (
    bytes | bytearray | str | int | bool | Node | Sequence[int | Node] | Sequence[str]
)
"""What :meth:`Node.set` accepts; see there for the encoding rules."""


class DeviceTree:
    """A device tree plus the DTB header data that is not part of the tree:
    the memory reservation block (5.3) and ``boot_cpuid_phys`` (5.2)."""

    def __init__(self, boot_cpuid_phys: int = 0) -> None:
        _u32(boot_cpuid_phys, "boot_cpuid_phys")
        self.boot_cpuid_phys = boot_cpuid_phys
        self.root = Node("", self, None)
        self.reservations: list[tuple[int, int]] = []

    def __repr__(self) -> str:
        return f"DeviceTree(nodes={sum(1 for _ in self.walk())}, reservations={self.reservations})"

    def reserve(self, address: int, size: int) -> None:
        """Add a memory reservation block entry (5.3)."""
        _u64(address, "reservation address")
        _u64(size, "reservation size")
        if size == 0:
            raise ValueError("a memory reservation needs a non-zero size")
        if address + size > _U64_MAX + 1:
            raise ValueError(f"reservation {address:#x}+{size:#x} wraps past 2^64")
        self.reservations.append((address, size))

    def walk(self) -> Iterator[Node]:
        return self.root.walk()

    def find(self, path: str) -> Node | None:
        """Node at absolute ``path`` (full names incl. unit address), or None."""
        if not path.startswith("/"):
            raise ValueError(f"path {path!r} is not absolute")
        node: Node | None = self.root
        for part in path.split("/"):
            if not part:
                continue
            assert node is not None
            node = node.child(part)
            if node is None:
                return None
        return node

    def __getitem__(self, path: str) -> Node:
        node = self.find(path)
        if node is None:
            raise KeyError(f"no node {path!r}")
        return node

    def phandles(self) -> dict[int, Node]:
        """phandle value -> node; ValueError on duplicates."""
        table: dict[int, Node] = {}
        for node in self.walk():
            raw = node.props.get("phandle")
            if raw is None:
                continue
            if len(raw) != 4:
                raise ValueError(f"{node.path}: phandle is {len(raw)} bytes, not 4")
            value = int(_U32.unpack(raw)[0])
            if value in (0, _U32_MAX):
                raise ValueError(f"{node.path}: phandle {value:#x} is reserved")
            if value in table:
                raise ValueError(
                    f"phandle {value} used by both {table[value].path} and {node.path}"
                )
            table[value] = node
        return table

    def next_free_phandle(self) -> int:
        used = self.phandles()
        value = max(used, default=0) + 1
        if value >= _U32_MAX:
            raise ValueError("phandle space exhausted")
        return value

    # -- serialization (5.2 - 5.6) -------------------------------------------

    def to_dtb(self, padding: int = 0) -> bytes:
        """Serialize to a version-17 DTB.

        Layout (as dtc does it): header, memory reservation block at offset
        40, structure block, strings block, then ``padding`` zero bytes of
        free space counted in ``totalsize`` (room for in-place edits).
        """
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.phandles()  # validates uniqueness

        strings = bytearray()
        offsets: dict[str, int] = {}

        def name_offset(name: str) -> int:
            off = offsets.get(name)
            if off is None:
                encoded = name.encode("utf-8") + b"\0"
                # Reuse an identical string or a suffix of a stored one (5.5).
                off = strings.find(encoded)
                if off < 0:
                    off = len(strings)
                    strings.extend(encoded)
                offsets[name] = off
            return off

        dt = bytearray()

        def emit(node: Node) -> None:
            name = node.name.encode("utf-8") + b"\0"
            dt.extend(_U32.pack(FDT_BEGIN_NODE))
            dt.extend(name)
            dt.extend(bytes(_align(len(name), 4) - len(name)))
            for key, value in node.props.items():
                dt.extend(struct.pack(">III", FDT_PROP, len(value), name_offset(key)))
                dt.extend(value)
                dt.extend(bytes(_align(len(value), 4) - len(value)))
            for child in node.children:
                emit(child)
            dt.extend(_U32.pack(FDT_END_NODE))

        emit(self.root)
        dt.extend(_U32.pack(FDT_END))

        rsv = bytearray()
        for address, size in self.reservations:
            rsv.extend(_RSV_ENTRY.pack(address, size))
        rsv.extend(_RSV_ENTRY.pack(0, 0))

        off_rsvmap = _align(_HEADER.size, 8)
        off_struct = off_rsvmap + len(rsv)
        off_strings = off_struct + len(dt)
        totalsize = off_strings + len(strings) + padding
        header = _HEADER.pack(
            FDT_MAGIC,
            totalsize,
            off_struct,
            off_strings,
            off_rsvmap,
            FDT_VERSION,
            FDT_LAST_COMP_VERSION,
            self.boot_cpuid_phys,
            len(strings),
            len(dt),
        )
        out = bytearray(header)
        out.extend(bytes(off_rsvmap - len(out)))
        out.extend(rsv)
        out.extend(dt)
        out.extend(strings)
        out.extend(bytes(padding))
        return bytes(out)

    def to_dts(self) -> str:
        return format_dts(self)


# ---------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FdtHeader:
    """The ten header fields of 5.2 (version 17 layout)."""

    magic: int
    totalsize: int
    off_dt_struct: int
    off_dt_strings: int
    off_mem_rsvmap: int
    version: int
    last_comp_version: int
    boot_cpuid_phys: int
    size_dt_strings: int
    size_dt_struct: int


def parse_header(data: bytes | bytearray | memoryview) -> FdtHeader:
    """Decode and sanity-check a DTB header; ValueError when malformed."""
    buf = bytes(data[: _HEADER.size])
    if len(buf) < _HEADER.size:
        raise ValueError(f"DTB too short for a header: {len(buf)} bytes")
    hdr = FdtHeader(*_HEADER.unpack(buf))
    if hdr.magic != FDT_MAGIC:
        raise ValueError(f"bad DTB magic {hdr.magic:#010x}")
    if hdr.version < 16 or hdr.last_comp_version > FDT_VERSION:
        raise ValueError(
            f"unsupported DTB version {hdr.version} (last_comp {hdr.last_comp_version})"
        )
    if hdr.totalsize > len(data) or hdr.totalsize < _HEADER.size:
        raise ValueError(f"DTB totalsize {hdr.totalsize} but {len(data)} bytes given")
    for what, off in (
        ("off_dt_struct", hdr.off_dt_struct),
        ("off_dt_strings", hdr.off_dt_strings),
        ("off_mem_rsvmap", hdr.off_mem_rsvmap),
    ):
        if off > hdr.totalsize:
            raise ValueError(f"DTB {what} {off:#x} beyond totalsize {hdr.totalsize:#x}")
    if hdr.off_dt_struct % 4 or hdr.off_mem_rsvmap % 8:
        raise ValueError("DTB structure or reservation block misaligned (5.6)")
    return hdr


def parse_dtb(data: bytes | bytearray | memoryview) -> DeviceTree:
    """Read a DTB (version 16 or 17) into a :class:`DeviceTree`.

    Bytes past ``totalsize`` are ignored; FDT_NOP tokens are skipped.  Names
    are taken as they are (no 2.2.1 checks), so foreign blobs load too.
    """
    blob = bytes(data)
    hdr = parse_header(blob)
    blob = blob[: hdr.totalsize]
    tree = DeviceTree(hdr.boot_cpuid_phys)

    pos = hdr.off_mem_rsvmap
    while True:
        if pos + _RSV_ENTRY.size > len(blob):
            raise ValueError("memory reservation block is not terminated")
        address, size = _RSV_ENTRY.unpack_from(blob, pos)
        pos += _RSV_ENTRY.size
        if address == 0 and size == 0:
            break
        tree.reservations.append((address, size))

    struct_end = len(blob)
    if hdr.version >= 17:
        struct_end = hdr.off_dt_struct + hdr.size_dt_struct
        if struct_end > len(blob):
            raise ValueError("structure block extends beyond totalsize")
    strings_end = hdr.off_dt_strings + hdr.size_dt_strings  # size_dt_strings: since v3
    if strings_end > len(blob):
        raise ValueError("strings block extends beyond totalsize")
    strings = blob[hdr.off_dt_strings : strings_end]

    def cstring(buf: bytes, start: int, limit: int, what: str) -> tuple[str, int]:
        """Decode a NUL-terminated string; returns it and the offset past NUL."""
        end = buf.find(b"\0", start, limit)
        if end < 0:
            raise ValueError(f"unterminated {what} at offset {start:#x}")
        return buf[start:end].decode("utf-8", errors="surrogateescape"), end + 1

    pos = hdr.off_dt_struct
    stack: list[Node] = []
    seen_root = False
    while True:
        if pos + 4 > struct_end:
            raise ValueError("structure block ends without FDT_END")
        tok = int(_U32.unpack_from(blob, pos)[0])
        pos += 4
        if tok == FDT_NOP:
            continue
        if tok == FDT_BEGIN_NODE:
            name, pos = cstring(blob, pos, struct_end, "node name")
            pos = _align(pos, 4)
            if stack:
                stack.append(stack[-1]._attach(name))
            elif seen_root or name:
                raise ValueError(f"unexpected top-level node {name!r}")
            else:
                seen_root = True
                stack.append(tree.root)
        elif tok == FDT_END_NODE:
            if not stack:
                raise ValueError("FDT_END_NODE without a matching FDT_BEGIN_NODE")
            stack.pop()
        elif tok == FDT_PROP:
            if not stack:
                raise ValueError("FDT_PROP outside of any node")
            if pos + 8 > struct_end:
                raise ValueError("truncated FDT_PROP")
            length, nameoff = struct.unpack_from(">II", blob, pos)
            pos += 8
            if pos + length > struct_end:
                raise ValueError("property value runs past the structure block")
            if nameoff >= len(strings):
                raise ValueError(f"property name offset {nameoff:#x} outside strings block")
            pname, _ = cstring(strings, nameoff, len(strings), "property name")
            stack[-1].props[pname] = blob[pos : pos + length]
            pos = _align(pos + length, 4)
        elif tok == FDT_END:
            if stack:
                raise ValueError(f"FDT_END inside node {stack[-1].path!r}")
            if not seen_root:
                raise ValueError("structure block has no root node")
            return tree
        else:
            raise ValueError(f"bad structure token {tok:#x} at offset {pos - 4:#x}")


# ---------------------------------------------------------------------------
# DTS printer (chapter 6)
# ---------------------------------------------------------------------------

_PRINTABLE = re.compile(rb"[\x20-\x7e]+")


def _looks_like_strings(raw: bytes) -> bool:
    if not raw or not raw.endswith(b"\0"):
        return False
    return all(_PRINTABLE.fullmatch(part) for part in raw[:-1].split(b"\0"))


def _quote(s: bytes) -> str:
    out = []
    for ch in s.decode("ascii"):
        if ch in '"\\':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _format_value(raw: bytes) -> str:
    if _looks_like_strings(raw):
        return ", ".join(_quote(part) for part in raw[:-1].split(b"\0"))
    if len(raw) % 4 == 0:
        cells = struct.unpack(f">{len(raw) // 4}I", raw)
        return "<" + " ".join(f"{c:#x}" for c in cells) + ">"
    return "[" + " ".join(f"{b:02x}" for b in raw) + "]"


def format_dts(tree: DeviceTree) -> str:
    """Render ``tree`` as DTS source (chapter 6) that ``dtc`` compiles back
    to the same tree.  Strings, ``<cells>`` and ``[bytes]`` are told apart by
    content, like ``dtc -O dts`` does; phandles stay numeric."""
    lines = ["/dts-v1/;", ""]
    for address, size in tree.reservations:
        lines.append(f"/memreserve/ {address:#018x} {size:#018x};")
    if tree.reservations:
        lines.append("")

    def emit(node: Node, depth: int) -> None:
        ind = "\t" * depth
        lines.append(f"{ind}{node.name or '/'} {{")
        for key, raw in node.props.items():
            if raw:
                lines.append(f"{ind}\t{key} = {_format_value(raw)};")
            else:
                lines.append(f"{ind}\t{key};")
        for child in node.children:
            lines.append("")
            emit(child, depth + 1)
        lines.append(f"{ind}}};")

    emit(tree.root, 0)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The rvh virt board
# ---------------------------------------------------------------------------


def virtio_path(slot: int) -> str:
    """Path of virtio-mmio slot ``slot`` (0..7), e.g. /soc/virtio_mmio@10001000."""
    if not 0 <= slot < VIRTIO_SLOTS:
        raise ValueError(f"virtio slot {slot} out of range 0..{VIRTIO_SLOTS - 1}")
    return f"{SOC_PATH}/virtio_mmio@{VIRTIO_BASE + slot * VIRTIO_SIZE:x}"


_MMIO_WINDOWS = (
    ("test", TEST_BASE, TEST_SIZE),
    ("rtc", RTC_BASE, RTC_SIZE),
    ("clint", CLINT_BASE, CLINT_SIZE),
    ("plic", PLIC_BASE, PLIC_SIZE),
    ("uart", UART0_BASE, UART0_SIZE),
    ("virtio", VIRTIO_BASE, VIRTIO_SLOTS * VIRTIO_SIZE),
)


@dataclass(frozen=True)
class Board:
    """What :func:`board_dtb` describes.  Validated on construction.

    ``isa`` goes verbatim into each cpu's ``riscv,isa``: ``rv64`` + single
    letters (starting with ``i`` or ``g``), then ``_``-separated multi-letter
    extensions.  The default ``rv64imacsu`` is the old QEMU spelling that both
    old and new Linux and OpenSBI accept; add ``h`` (e.g. ``rv64imacsuh``) for
    a hypervisor-capable hart (no AIA nodes are needed for that).
    ``extra_nodes`` hooks run last, in order, on the finished tree (look up
    nodes with e.g. ``tree[PLIC_PATH]`` and reference them by phandle).
    """

    harts: int = 1
    ram_size: int = DEFAULT_MEMORY
    ram_base: int = RAM_BASE
    isa: str = "rv64imacsu"
    mmu_type: str | None = "riscv,sv39"
    timebase_frequency: int = TIMEBASE_HZ
    bootargs: str | None = None
    initrd_start: int | None = None
    initrd_end: int | None = None
    rng_seed: bytes | None = None
    boot_hart: int = 0
    plic_ndev: int = PLIC_NDEV
    extra_nodes: tuple[Callable[[DeviceTree], None], ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.harts, bool) or not isinstance(self.harts, int):
            raise TypeError(f"harts must be an int, got {self.harts!r}")
        if not 1 <= self.harts <= _MAX_HARTS:
            raise ValueError(f"harts must be 1..{_MAX_HARTS}, got {self.harts}")
        if not 0 <= self.boot_hart < self.harts:
            raise ValueError(f"boot_hart {self.boot_hart} is not one of the {self.harts} harts")
        if self.ram_size <= 0:
            raise ValueError(f"ram_size must be positive, got {self.ram_size:#x}")
        if self.ram_base % _PAGE or self.ram_size % _PAGE:
            raise ValueError(f"RAM {self.ram_base:#x}+{self.ram_size:#x} is not 4 KiB aligned")
        if self.ram_base < 0 or self.ram_base + self.ram_size > _U64_MAX + 1:
            raise ValueError(f"RAM {self.ram_base:#x}+{self.ram_size:#x} exceeds 64-bit space")
        for what, base, size in _MMIO_WINDOWS:
            if self.ram_base < base + size and base < self.ram_base + self.ram_size:
                raise ValueError(f"RAM {self.ram_base:#x}+{self.ram_size:#x} overlaps the {what}")
        if not _ISA_RE.fullmatch(self.isa):
            raise ValueError(f"isa {self.isa!r} is not like 'rv64imacsu' or 'rv64imac_zicsr'")
        if self.mmu_type is not None and self.mmu_type not in _MMU_TYPES:
            raise ValueError(f"mmu_type must be one of {sorted(_MMU_TYPES)} or None")
        if not 0 < self.timebase_frequency <= _U32_MAX:
            raise ValueError(f"timebase_frequency {self.timebase_frequency} out of range")
        if self.bootargs is not None and "\0" in self.bootargs:
            raise ValueError("bootargs may not contain NUL")
        if (self.initrd_start is None) != (self.initrd_end is None):
            raise ValueError("give both initrd_start and initrd_end, or neither")
        start, end = self.initrd_start, self.initrd_end
        if start is not None and end is not None and not 0 <= start < end <= _U64_MAX:
            raise ValueError(f"initrd range {start:#x}..{end:#x} is empty or invalid")
        if self.rng_seed is not None and not self.rng_seed:
            raise ValueError("rng_seed must be non-empty when given")
        if not 1 <= self.plic_ndev <= 1023:
            raise ValueError(f"plic_ndev must be 1..1023, got {self.plic_ndev}")

    @property
    def has_hypervisor(self) -> bool:
        """True when the single-letter part of ``isa`` contains ``h``."""
        return "h" in self.isa[4:].split("_", 1)[0]


def board_tree(board: Board) -> DeviceTree:
    """Build the device tree for ``board`` (QEMU 7.2 virt layout and order)."""
    tree = DeviceTree(boot_cpuid_phys=board.boot_hart)
    root = tree.root
    root.prop_u32("#address-cells", 2)
    root.prop_u32("#size-cells", 2)
    root.prop_str("compatible", "riscv-virtio")
    root.prop_str("model", "riscv-virtio,qemu")

    # /chosen (3.6); filled after /soc exists so stdout-path names the uart.
    chosen = root.add("chosen")

    poweroff = root.add("poweroff")
    reboot = root.add("reboot")

    memory = root.add(f"memory@{board.ram_base:x}")
    memory.prop_str("device_type", "memory")
    memory.prop_reg((board.ram_base, board.ram_size))

    # /cpus (3.7, 3.8)
    cpus = root.add("cpus")
    cpus.prop_u32("#address-cells", 1)
    cpus.prop_u32("#size-cells", 0)
    cpus.prop_u32("timebase-frequency", board.timebase_frequency)
    cpu_nodes: list[Node] = []
    intcs: list[Node] = []
    for hart in range(board.harts):
        cpu = cpus.add(f"cpu@{hart:x}")
        cpu.phandle()
        cpu.prop_str("device_type", "cpu")
        cpu.prop_u32("reg", hart)
        cpu.prop_str("status", "okay")
        cpu.prop_str("compatible", "riscv")
        cpu.prop_str("riscv,isa", board.isa)
        if board.mmu_type is not None:
            cpu.prop_str("mmu-type", board.mmu_type)
        intc = cpu.add("interrupt-controller")
        intc.prop_u32("#interrupt-cells", 1)
        intc.prop_empty("interrupt-controller")
        intc.prop_str("compatible", "riscv,cpu-intc")
        intc.phandle()
        cpu_nodes.append(cpu)
        intcs.append(intc)
    cluster = cpus.add("cpu-map").add("cluster0")
    for hart, cpu in enumerate(cpu_nodes):
        cluster.add(f"core{hart}").prop_phandle("cpu", cpu)

    soc = root.add("soc")
    soc.prop_u32("#address-cells", 2)
    soc.prop_u32("#size-cells", 2)
    soc.prop_str("compatible", "simple-bus")
    soc.prop_empty("ranges")

    # Children of /soc in QEMU's order (virtio slots highest address first,
    # so Linux enumerates them exactly as on QEMU); properties filled below.
    rtc = soc.add(f"rtc@{RTC_BASE:x}")
    uart = soc.add(f"serial@{UART0_BASE:x}")
    test = soc.add(f"test@{TEST_BASE:x}")
    virtio = [
        soc.add(virtio_path(slot).rsplit("/", 1)[1]) for slot in reversed(range(VIRTIO_SLOTS))
    ]
    plic = soc.add(f"plic@{PLIC_BASE:x}")
    clint = soc.add(f"clint@{CLINT_BASE:x}")

    plic.prop_u32("#interrupt-cells", 1)
    plic.prop_u32("#address-cells", 0)
    plic.prop_strs("compatible", "sifive,plic-1.0.0", "riscv,plic0")
    plic.prop_empty("interrupt-controller")
    plic.prop_cells(
        "interrupts-extended",
        *_per_hart(intcs, Interrupt.MACHINE_EXTERNAL, Interrupt.SUPERVISOR_EXTERNAL),
    )
    plic.prop_reg((PLIC_BASE, PLIC_SIZE))
    plic.prop_u32("riscv,ndev", board.plic_ndev)
    plic.phandle()

    clint.prop_strs("compatible", "sifive,clint0", "riscv,clint0")
    clint.prop_reg((CLINT_BASE, CLINT_SIZE))
    clint.prop_cells(
        "interrupts-extended",
        *_per_hart(intcs, Interrupt.MACHINE_SOFTWARE, Interrupt.MACHINE_TIMER),
    )

    uart.prop_str("compatible", "ns16550a")
    uart.prop_reg((UART0_BASE, UART0_SIZE))
    uart.prop_u32("clock-frequency", UART0_CLOCK_FREQUENCY)
    uart.prop_phandle("interrupt-parent", plic)
    uart.prop_u32("interrupts", UART0_IRQ)

    rtc.prop_str("compatible", "google,goldfish-rtc")
    rtc.prop_reg((RTC_BASE, RTC_SIZE))
    rtc.prop_phandle("interrupt-parent", plic)
    rtc.prop_u32("interrupts", RTC_IRQ)

    test.prop_strs("compatible", "sifive,test1", "sifive,test0", "syscon")
    test.prop_reg((TEST_BASE, TEST_SIZE))
    test.phandle()

    for node, slot in zip(virtio, reversed(range(VIRTIO_SLOTS)), strict=True):
        node.prop_str("compatible", "virtio,mmio")
        node.prop_reg((VIRTIO_BASE + slot * VIRTIO_SIZE, VIRTIO_SIZE))
        node.prop_phandle("interrupt-parent", plic)
        node.prop_u32("interrupts", VIRTIO_IRQ_BASE + slot)

    for node, compatible, value in (
        (poweroff, "syscon-poweroff", FINISHER_PASS),
        (reboot, "syscon-reboot", FINISHER_RESET),
    ):
        node.prop_str("compatible", compatible)
        node.prop_phandle("regmap", test)
        node.prop_u32("offset", 0)
        node.prop_u32("value", value)

    chosen.prop_str("stdout-path", uart.path)
    if board.bootargs is not None:
        chosen.prop_str("bootargs", board.bootargs)
    if board.initrd_start is not None and board.initrd_end is not None:
        chosen.prop_u64("linux,initrd-start", board.initrd_start)
        chosen.prop_u64("linux,initrd-end", board.initrd_end)
    if board.rng_seed is not None:
        chosen.prop_bytes("rng-seed", board.rng_seed)

    for hook in board.extra_nodes:
        hook(tree)
    return tree


def _per_hart(intcs: Sequence[Node], *irqs: int) -> list[int | Node]:
    cells: list[int | Node] = []
    for intc in intcs:
        for irq in irqs:
            cells += [intc, irq]
    return cells


def board_dtb(board: Board, padding: int = 0) -> bytes:
    """Serialize :func:`board_tree` (``padding`` free bytes at the end)."""
    return board_tree(board).to_dtb(padding=padding)

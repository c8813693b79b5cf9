"""Tests for rvh.fdt: the DTB writer/reader (Devicetree spec v0.4 chapter 5)
and the virt board tree, checked against dtc and QEMU 7.2's own DTB."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from support import require_dtc, require_qemu

from rvh.config import MachineConfig
from rvh.fdt import (
    CLINT_PATH,
    FDT_MAGIC,
    PLIC_PATH,
    TEST_PATH,
    UART0_PATH,
    Board,
    DeviceTree,
    Node,
    board_dtb,
    board_tree,
    format_dts,
    parse_dtb,
    parse_header,
    virtio_path,
)
from rvh.machine import Machine

MiB = 1024 * 1024

# dtc warns about this for every cpu-intc node; QEMU 7.2's DTB gets the same
# warning, and we keep QEMU's exact cpu-intc properties.
KNOWN_DTC_WARNING = "Missing #address-cells in interrupt provider"

# QEMU 7.2 virt nodes rvh does not have (no PMU events, fw_cfg, CFI flash,
# platform bus or PCIe host).
QEMU_ONLY_NODES = {
    "/pmu",
    "/fw-cfg@10100000",
    "/flash@20000000",
    "/platform-bus@4000000",
    "/soc/pci@30000000",
}
# Properties whose cells hold phandles (compared by the node they point at).
PHANDLE_PROPS = {"interrupt-parent", "regmap", "cpu"}


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def run_dtc(*args: str, data: bytes) -> tuple[bytes, str]:
    command = [require_dtc(), *args]
    proc = subprocess.run(command, input=data, capture_output=True, timeout=10, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout, proc.stderr.decode()


def flatten(tree: DeviceTree) -> dict[str, dict[str, bytes]]:
    return {node.path: dict(node.props) for node in tree.walk()}


def resolved(tree: DeviceTree) -> dict[str, dict[str, object]]:
    """Properties per path with phandles replaced by the target's path."""
    by_phandle = tree.phandles()
    out: dict[str, dict[str, object]] = {}
    for node in tree.walk():
        props: dict[str, object] = {}
        for name, raw in node.props.items():
            if name == "phandle":
                props[name] = True
            elif name in PHANDLE_PROPS:
                props[name] = [by_phandle[c].path for c in node.get_cells(name)]
            elif name == "interrupts-extended":
                cells = node.get_cells(name)
                pairs = []
                while cells:
                    parent = by_phandle[cells.pop(0)]
                    n = parent.get_u32("#interrupt-cells")
                    pairs.append((parent.path, tuple(cells[:n])))
                    del cells[:n]
                props[name] = pairs
            else:
                props[name] = raw
        out[node.path] = props
    return out


def header_fields(blob: bytes) -> tuple[int, ...]:
    return struct.unpack_from(">10I", blob)


def patch_u32(blob: bytes, offset: int, value: int) -> bytes:
    return blob[:offset] + struct.pack(">I", value) + blob[offset + 4 :]


def small_tree() -> DeviceTree:
    tree = DeviceTree(boot_cpuid_phys=3)
    root = tree.root
    root.prop_u32("#address-cells", 2).prop_u32("#size-cells", 1)
    dev = root.add("dev@1000")
    dev.prop_reg((0x1000, 0x100))
    dev.prop_strs("compatible", "acme,widget", "simple")
    other = root.add("other", {"ref": dev, "flag": True, "size-cells": 7})
    other.prop_u64("big", 0x1122334455667788).prop_bytes("raw", b"\x01\x02\x03")
    tree.reserve(0x8000_0000, 0x20_0000)
    return tree


# ---------------------------------------------------------------------------
# generic writer: encoding and layout (spec 2.2.4, 5.2-5.6)
# ---------------------------------------------------------------------------


def test_header_and_layout() -> None:
    tree = small_tree()
    blob = tree.to_dtb()
    (magic, total, off_struct, off_strings, off_rsv, version, last_comp, boot, size_strings,
     size_struct) = header_fields(blob)  # fmt: skip
    assert magic == FDT_MAGIC == 0xD00DFEED
    assert total == len(blob)
    assert (version, last_comp, boot) == (17, 16, 3)
    assert off_rsv == 40 and off_rsv % 8 == 0
    # one entry plus the 0/0 terminator
    assert blob[off_rsv : off_rsv + 32] == struct.pack(">QQQQ", 0x8000_0000, 0x20_0000, 0, 0)
    assert off_struct == off_rsv + 32 and off_struct % 4 == 0
    assert off_strings == off_struct + size_struct
    assert total == off_strings + size_strings
    assert struct.unpack_from(">I", blob, off_struct)[0] == 1  # FDT_BEGIN_NODE
    assert struct.unpack_from(">I", blob, off_strings - 4)[0] == 9  # FDT_END
    hdr = parse_header(blob)
    assert (hdr.version, hdr.last_comp_version, hdr.boot_cpuid_phys) == (17, 16, 3)


def test_empty_reservation_block_is_terminated() -> None:
    blob = DeviceTree().to_dtb()
    off_rsv = header_fields(blob)[4]
    assert blob[off_rsv : off_rsv + 16] == bytes(16)
    assert parse_dtb(blob).reservations == []


def test_strings_block_is_deduplicated() -> None:
    tree = DeviceTree()
    tree.root.prop_u32("#size-cells", 1)
    for i in range(3):
        tree.root.add(f"n{i}").prop_u32("#size-cells", i).prop_u32("size-cells", i)
    blob = tree.to_dtb()
    _, _, _, off_strings, _, _, _, _, size_strings, _ = header_fields(blob)
    # "size-cells" is stored as the tail of "#size-cells", both only once.
    assert blob[off_strings : off_strings + size_strings] == b"#size-cells\0"
    assert parse_dtb(blob).find("/n2") is not None
    assert parse_dtb(blob)["/n2"].get_u32("size-cells") == 2


def test_value_encodings() -> None:
    tree = small_tree()
    root, dev, other = tree.root, tree["/dev@1000"], tree["/other"]
    assert root.props["#address-cells"] == b"\0\0\0\2"
    assert dev.props["reg"] == struct.pack(">III", 0, 0x1000, 0x100)  # 2 + 1 cells
    assert dev.props["compatible"] == b"acme,widget\0simple\0"
    assert dev.phandle() == 1
    assert other.props["ref"] == b"\0\0\0\1"
    assert other.props["flag"] == b""
    assert other.props["big"] == bytes.fromhex("1122334455667788")
    assert other.props["raw"] == b"\1\2\3"
    cells: list[int | Node] = [1, dev, 0xFFFF_FFFF]
    other.set("cells", cells).set("names", ["a", "bc"]).set("s", "x")
    assert other.props["cells"] == struct.pack(">III", 1, 1, 0xFFFF_FFFF)
    assert other.props["names"] == b"a\0bc\0"
    assert other.get_strs("names") == ["a", "bc"] and other.get_str("s") == "x"
    other.set("flag", False)
    assert "flag" not in other.props
    other.prop_u32("s", 5)  # replacing keeps the position
    assert list(other.props).index("s") == list(other.props).index("names") + 1


def test_parse_round_trip_is_exact() -> None:
    tree = small_tree()
    blob = tree.to_dtb()
    back = parse_dtb(blob)
    assert flatten(back) == flatten(tree)
    assert back.reservations == tree.reservations and back.boot_cpuid_phys == 3
    assert back.to_dtb() == blob
    assert [n.path for n in back.walk()] == ["/", "/dev@1000", "/other"]


def handmade_blob(*, nops: bool, padding: int) -> bytes:
    """A DTB assembled by hand, independently of the writer under test."""
    nop = struct.pack(">I", 4) if nops else b""
    strings = b"a\0b\0"
    structure = b"".join(
        [
            struct.pack(">I", 1) + b"\0\0\0\0",  # FDT_BEGIN_NODE "" (root)
            nop,
            struct.pack(">III", 3, 4, 0) + struct.pack(">I", 0xCAFE),  # a = <0xcafe>
            struct.pack(">I", 1) + b"n@1\0",  # FDT_BEGIN_NODE "n@1"
            struct.pack(">III", 3, 0, 2),  # b;
            nop,
            struct.pack(">I", 2),  # FDT_END_NODE
            struct.pack(">I", 2),
            struct.pack(">I", 9),  # FDT_END
        ]
    )
    off_struct = 40 + 16
    off_strings = off_struct + len(structure)
    total = off_strings + len(strings) + padding
    header = struct.pack(
        ">10I", FDT_MAGIC, total, off_struct, off_strings, 40, 17, 16, 0,
        len(strings), len(structure),
    )  # fmt: skip
    return header + bytes(16) + structure + strings + bytes(padding)


def test_parse_handmade_blob_with_nops() -> None:
    blob = handmade_blob(nops=True, padding=8) + b"ignored: past totalsize"
    tree = parse_dtb(blob)
    assert flatten(tree) == {"/": {"a": struct.pack(">I", 0xCAFE)}, "/n@1": {"b": b""}}
    assert tree.to_dtb() == handmade_blob(nops=False, padding=0)
    assert tree.to_dtb(padding=8) == handmade_blob(nops=False, padding=8)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"\0" + b[1:], "magic"),
        (lambda b: b[:20], "too short"),
        (lambda b: b[:-8], "totalsize"),
        (lambda b: patch_u32(b, header_fields(b)[2], 7), "bad structure token"),
        (lambda b: patch_u32(b, 24, 18), "unsupported"),  # last_comp_version
        (lambda b: patch_u32(b, 20, 15), "unsupported"),  # version
        (lambda b: patch_u32(b, header_fields(b)[2] + 12, 0x1000), "past the structure"),
        (lambda b: patch_u32(b, header_fields(b)[3] - 4, 2), "without a matching"),
    ],
)
def test_parse_rejects_malformed(mutate: object, message: str) -> None:
    blob = small_tree().to_dtb()
    assert callable(mutate)
    with pytest.raises(ValueError, match=message):
        parse_dtb(mutate(blob))


def test_phandles_allocate_after_existing_and_detect_duplicates() -> None:
    tree = DeviceTree()
    a, b, c = (tree.root.add(n) for n in ("a", "b", "c"))
    a.prop_u32("phandle", 7)
    assert a.phandle() == 7
    assert b.phandle() == 8 and b.phandle() == 8
    c.prop_u32("phandle", 8)
    with pytest.raises(ValueError, match="phandle 8 used by both /b and /c"):
        tree.to_dtb()


def test_padding_is_free_space() -> None:
    blob = small_tree().to_dtb(padding=256)
    assert header_fields(blob)[1] == len(blob) and blob.endswith(bytes(256))
    assert flatten(parse_dtb(blob)) == flatten(small_tree())


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda n: n.add("bad name"), ValueError),
        (lambda n: n.add("9starts-with-digit"), ValueError),
        (lambda n: n.add("x" * 32), ValueError),
        (lambda n: n.prop_u32("bad name", 1), ValueError),
        (lambda n: n.prop_u32("x", 1 << 32), ValueError),
        (lambda n: n.prop_u32("x", -1), ValueError),
        (lambda n: n.prop_u64("x", 1 << 64), ValueError),
        (lambda n: n.prop_str("x", "a\0b"), ValueError),
        (lambda n: n.prop_strs("x"), ValueError),
        (lambda n: n.set("x", ["a", 1]), TypeError),
        (lambda n: n.prop_u32("x", True), TypeError),
        (lambda n: n.prop_reg((1 << 64, 1)), ValueError),
        (lambda n: (n.add("dup"), n.add("dup")), ValueError),
    ],
)
def test_invalid_nodes_and_values(action: object, error: type[Exception]) -> None:
    tree = DeviceTree()
    node = tree.root.add("n")
    assert callable(action)
    with pytest.raises(error):
        action(node)


def test_reserve_rejects_empty_and_wrapping() -> None:
    tree = DeviceTree()
    with pytest.raises(ValueError, match="non-zero"):
        tree.reserve(0x1000, 0)
    with pytest.raises(ValueError, match="wraps"):
        tree.reserve(0xFFFF_FFFF_FFFF_F000, 0x2000)


# ---------------------------------------------------------------------------
# dtc interoperability
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("harts", [1, 4])
def test_dtc_decompiles_board_cleanly(harts: int) -> None:
    _, stderr = run_dtc("-I", "dtb", "-O", "dts", data=board_dtb(Board(harts=harts)))
    warnings = [line for line in stderr.splitlines() if line.strip()]
    assert len(warnings) == harts  # one per cpu-intc, as for QEMU's own DTB
    assert all(KNOWN_DTC_WARNING in line for line in warnings)


@pytest.mark.parametrize(
    "make",
    [small_tree, lambda: board_tree(Board(harts=4, bootargs='console=ttyS0 x="1"'))],
    ids=["generic", "board"],
)
def test_dtc_reencodes_byte_identically(make: object) -> None:
    """dtc re-serializing our DTB, or compiling our DTS, gives the same bytes."""
    assert callable(make)
    tree = make()
    assert isinstance(tree, DeviceTree)
    blob = tree.to_dtb()
    assert run_dtc("-q", "-I", "dtb", "-O", "dtb", data=blob)[0] == blob
    boot = str(tree.boot_cpuid_phys)  # not part of DTS source
    dts = format_dts(tree).encode()
    assert run_dtc("-q", "-I", "dts", "-O", "dtb", "-b", boot, data=dts)[0] == blob


def test_dts_round_trip_through_dtc() -> None:
    board = Board(harts=2, bootargs="root=/dev/vda", initrd_start=0x8400_0000,
                  initrd_end=0x8480_0000)  # fmt: skip
    blob = board_dtb(board)
    dts, _ = run_dtc("-q", "-I", "dtb", "-O", "dts", data=blob)
    recompiled, _ = run_dtc("-q", "-I", "dts", "-O", "dtb", data=dts)
    assert flatten(parse_dtb(recompiled)) == flatten(parse_dtb(blob))
    assert recompiled == blob


# ---------------------------------------------------------------------------
# the virt board
# ---------------------------------------------------------------------------


def board(**kwargs: object) -> DeviceTree:
    return parse_dtb(board_dtb(Board(**kwargs)))  # type: ignore[arg-type]


def test_board_root_memory_and_soc() -> None:
    tree = board(ram_size=512 * MiB)
    root = tree.root
    assert root.get_u32("#address-cells") == 2 and root.get_u32("#size-cells") == 2
    assert root.get_str("compatible") == "riscv-virtio"
    assert root.get_str("model") == "riscv-virtio,qemu"
    mem = tree["/memory@80000000"]
    assert mem.get_str("device_type") == "memory"
    assert mem.get_cells("reg") == [0, 0x8000_0000, 0, 0x2000_0000]
    soc = tree["/soc"]
    assert soc.get_strs("compatible") == ["simple-bus"] and soc.props["ranges"] == b""
    assert (soc.get_u32("#address-cells"), soc.get_u32("#size-cells")) == (2, 2)
    assert parse_header(board_dtb(Board())).boot_cpuid_phys == 0


def test_board_large_ram_uses_both_cells() -> None:
    tree = board(ram_base=0x1_0000_0000, ram_size=0x1_8000_0000)
    assert tree["/memory@100000000"].get_cells("reg") == [1, 0, 1, 0x8000_0000]


@pytest.mark.parametrize("harts", [1, 4])
def test_board_cpus(harts: int) -> None:
    tree = board(harts=harts, isa="rv64imacsuh", mmu_type="riscv,sv48")
    cpus = tree["/cpus"]
    assert (cpus.get_u32("#address-cells"), cpus.get_u32("#size-cells")) == (1, 0)
    assert cpus.get_u32("timebase-frequency") == 10_000_000
    names = [c.name for c in cpus.children]
    assert names == [f"cpu@{h}" for h in range(harts)] + ["cpu-map"]
    by_phandle = tree.phandles()
    for hart in range(harts):
        cpu = tree[f"/cpus/cpu@{hart}"]
        assert cpu.get_u32("reg") == hart
        assert cpu.get_str("device_type") == "cpu"
        assert cpu.get_str("status") == "okay"
        assert cpu.get_str("compatible") == "riscv"
        assert cpu.get_str("riscv,isa") == "rv64imacsuh"
        assert cpu.get_str("mmu-type") == "riscv,sv48"
        intc = cpu.child("interrupt-controller")
        assert intc is not None and intc.props["interrupt-controller"] == b""
        assert intc.get_str("compatible") == "riscv,cpu-intc"
        assert intc.get_u32("#interrupt-cells") == 1
        assert intc.get_u32("phandle") in by_phandle
        core = tree[f"/cpus/cpu-map/cluster0/core{hart}"]
        assert by_phandle[core.get_u32("cpu")] is cpu
    assert len(tree["/cpus/cpu-map/cluster0"].children) == harts


def intc_path(hart: int) -> str:
    return f"/cpus/cpu@{hart}/interrupt-controller"


@pytest.mark.parametrize("harts", [1, 4])
def test_board_clint_and_plic(harts: int) -> None:
    props = resolved(board(harts=harts))
    clint = props[CLINT_PATH]
    assert clint["compatible"] == b"sifive,clint0\0riscv,clint0\0"
    assert clint["reg"] == struct.pack(">4I", 0, 0x0200_0000, 0, 0x1_0000)
    assert clint["interrupts-extended"] == [
        (intc_path(h), (irq,)) for h in range(harts) for irq in (3, 7)
    ]
    plic = props[PLIC_PATH]
    assert plic["compatible"] == b"sifive,plic-1.0.0\0riscv,plic0\0"
    assert plic["reg"] == struct.pack(">4I", 0, 0x0C00_0000, 0, 0x60_0000)
    assert plic["riscv,ndev"] == struct.pack(">I", 0x5F)
    assert plic["interrupt-controller"] == b"" and plic["phandle"] is True
    assert plic["#interrupt-cells"] == struct.pack(">I", 1)
    assert plic["#address-cells"] == struct.pack(">I", 0)
    assert plic["interrupts-extended"] == [
        (intc_path(h), (irq,)) for h in range(harts) for irq in (11, 9)
    ]


def test_board_uart_test_device_and_syscon() -> None:
    props = resolved(board())
    uart = props[UART0_PATH]
    assert uart["compatible"] == b"ns16550a\0"
    assert uart["reg"] == struct.pack(">4I", 0, 0x1000_0000, 0, 0x100)
    assert uart["clock-frequency"] == struct.pack(">I", 0x38_4000)
    assert uart["interrupts"] == struct.pack(">I", 10)
    assert uart["interrupt-parent"] == [PLIC_PATH]
    test = props[TEST_PATH]
    assert test["compatible"] == b"sifive,test1\0sifive,test0\0syscon\0"
    assert test["reg"] == struct.pack(">4I", 0, 0x10_0000, 0, 0x1000)
    for path, compatible, value in (
        ("/poweroff", b"syscon-poweroff\0", 0x5555),
        ("/reboot", b"syscon-reboot\0", 0x7777),
    ):
        assert props[path] == {
            "compatible": compatible,
            "regmap": [TEST_PATH],
            "offset": struct.pack(">I", 0),
            "value": struct.pack(">I", value),
        }


def test_board_virtio_slots_in_qemu_order() -> None:
    tree = board()
    props = resolved(tree)
    soc_children = [c.path for c in tree["/soc"].children]
    slots = [p for p in soc_children if "virtio_mmio" in p]
    assert slots == [virtio_path(i) for i in reversed(range(8))]  # highest first, as QEMU
    assert virtio_path(0) == "/soc/virtio_mmio@10001000"
    for i in range(8):
        node = props[virtio_path(i)]
        assert node["compatible"] == b"virtio,mmio\0"
        assert node["reg"] == struct.pack(">4I", 0, 0x1000_1000 + 0x1000 * i, 0, 0x1000)
        assert node["interrupts"] == struct.pack(">I", 1 + i)
        assert node["interrupt-parent"] == [PLIC_PATH]


def test_board_chosen_without_options() -> None:
    tree = board()
    chosen = tree["/chosen"]
    assert list(chosen.props) == ["stdout-path"]
    assert tree.find(chosen.get_str("stdout-path")) is tree[UART0_PATH]


def test_board_chosen_with_bootargs_initrd_and_seed() -> None:
    tree = board(
        bootargs="console=ttyS0 earlycon",
        initrd_start=0x8800_0000,
        initrd_end=0x8812_3000,
        rng_seed=b"\x01" * 32,
    )
    chosen = tree["/chosen"]
    assert chosen.get_str("stdout-path") == "/soc/serial@10000000"
    assert chosen.get_str("bootargs") == "console=ttyS0 earlycon"
    assert chosen.get_u64("linux,initrd-start") == 0x8800_0000
    assert chosen.get_u64("linux,initrd-end") == 0x8812_3000
    assert chosen.props["rng-seed"] == b"\x01" * 32


def test_board_without_mmu_and_with_h() -> None:
    tree = board(mmu_type=None, isa="rv64imach_zicsr_zifencei")
    assert "mmu-type" not in tree["/cpus/cpu@0"].props
    assert Board(isa="rv64imach_zicsr_zifencei").has_hypervisor
    assert Board(isa="rv64imacsuh").has_hypervisor
    assert not Board().has_hypervisor
    assert not Board(isa="rv64imac_zhint").has_hypervisor


def test_board_extra_nodes_hook() -> None:
    def add_second_rtc(tree: DeviceTree) -> None:
        rtc = tree["/soc"].add("rtc@102000")
        rtc.prop_str("compatible", "google,goldfish-rtc")
        rtc.prop_reg((0x10_2000, 0x1000))
        rtc.prop_phandle("interrupt-parent", tree[PLIC_PATH])
        rtc.prop_u32("interrupts", 12)

    props = resolved(board(extra_nodes=(add_second_rtc,)))
    assert props["/soc/rtc@102000"]["interrupt-parent"] == [PLIC_PATH]
    assert props["/soc/rtc@102000"]["reg"] == struct.pack(">4I", 0, 0x10_2000, 0, 0x1000)


def test_board_has_the_goldfish_rtc_where_qemu_virt_has_it() -> None:
    props = resolved(board())
    rtc = props["/soc/rtc@101000"]
    assert rtc["compatible"] == b"google,goldfish-rtc\0"
    assert rtc["reg"] == struct.pack(">4I", 0, 0x10_1000, 0, 0x1000)
    assert rtc["interrupt-parent"] == [PLIC_PATH]
    assert rtc["interrupts"] == struct.pack(">I", 11)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"harts": 0}, "harts must be 1..8"),
        ({"harts": 9}, "harts must be 1..8"),
        ({"ram_base": 0x8000_0800}, "not 4 KiB aligned"),
        ({"ram_size": 0x1000_0001}, "not 4 KiB aligned"),
        ({"ram_size": 0}, "positive"),
        ({"ram_base": 0x1000_0000}, "overlaps the uart"),
        ({"ram_base": 0xFFFF_FFFF_FFFF_0000, "ram_size": 0x2_0000}, "64-bit"),
        ({"isa": "rv32imac"}, "isa"),
        ({"isa": "RV64IMAC"}, "isa"),
        ({"mmu_type": "sv39"}, "mmu_type"),
        ({"timebase_frequency": 0}, "timebase_frequency"),
        ({"initrd_start": 0x8800_0000}, "both initrd"),
        ({"initrd_start": 0x8800_0000, "initrd_end": 0x8800_0000}, "initrd range"),
        ({"boot_hart": 1}, "boot_hart"),
        ({"bootargs": "a\0b"}, "NUL"),
        ({"plic_ndev": 0}, "plic_ndev"),
    ],
)
def test_board_rejects_invalid(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Board(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_format_dts_is_readable() -> None:
    text = format_dts(board(bootargs='a "quoted" \\ arg'))
    assert text.startswith("/dts-v1/;\n")
    assert '\t\tbootargs = "a \\"quoted\\" \\\\ arg";' in text
    assert "\t\t\tclock-frequency = <0x384000>;" in text
    assert '"sifive,test1", "sifive,test0", "syscon";' in text
    assert "\t\t\tinterrupt-controller;" in text


# ---------------------------------------------------------------------------
# comparison with QEMU 7.2's virt DTB
# ---------------------------------------------------------------------------


# The hart rvh is compared with: QEMU's -cpu rv64 with the H extension, F and D
# (rvh/diff/qemu.py runs the same CPU).
QEMU_REFERENCE_CPU = "rv64,f=true,d=true,h=true"
# QEMU 7.2's rv64 CPU also has Zihintpause, Zba, Zbb, Zbc and Zbs, which rvh does not implement;
# rvh spells S and U as letters too (the older spelling Linux and OpenSBI accept).
QEMU_ISA = "rv64imafdch_zicsr_zifencei_zihintpause_zba_zbb_zbc_zbs_sstc"
RVH_ISA = "rv64imafdcsuh_zicsr_zifencei_sstc"


def qemu_dtb(tmp_path: Path, harts: int) -> DeviceTree:
    out = tmp_path / f"qemu-{harts}.dtb"
    subprocess.run(
        [require_qemu(), "-machine", f"virt,dumpdtb={out}", "-cpu", QEMU_REFERENCE_CPU,
         "-m", "256", "-smp", str(harts), "-nographic", "-bios", "none"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    return parse_dtb(out.read_bytes())


def served_tree(harts: int) -> DeviceTree:
    """The tree rvh's machine writes into guest RAM for a boot (what ``rvh dtb`` prints)."""
    machine = Machine(MachineConfig(harts=harts, memory=256 * MiB), output=lambda _: None)
    return parse_dtb(machine.device_tree())


@pytest.mark.qemu
@pytest.mark.parametrize("harts", [1, 4])
def test_served_tree_matches_qemu_virt(tmp_path: Path, harts: int) -> None:
    """The tree rvh serves, property by property, against QEMU 7.2's for the same board and
    hart; every difference is listed below."""
    qemu = qemu_dtb(tmp_path, harts)
    ours = served_tree(harts)
    theirs_props, our_props = resolved(qemu), resolved(ours)

    # Node sets: QEMU has a few devices we do not; we have nothing extra.
    assert set(theirs_props) - set(our_props) == QEMU_ONLY_NODES
    assert set(our_props) - set(theirs_props) == set()

    # Same children in the same order under every parent (so Linux probes
    # the virtio slots in QEMU's order).
    for node in ours.walk():
        qemu_order = [c.name for c in qemu[node.path].children]
        qemu_order = [
            n for n in qemu_order if f"{node.path.rstrip('/')}/{n}" not in QEMU_ONLY_NODES
        ]
        assert [c.name for c in node.children] == qemu_order, node.path

    # Every property of every common node equal (phandles resolved), except the random
    # rng-seed QEMU puts in /chosen and each hart's riscv,isa (the extensions differ, above).
    diffs = {}
    for path, props in our_props.items():
        theirs = dict(theirs_props[path])
        if path == "/chosen":
            theirs.pop("rng-seed")
        if props != theirs:
            for name in set(props) | set(theirs):
                if props.get(name) != theirs.get(name):
                    diffs[(path, name)] = (props.get(name), theirs.get(name))
    assert diffs == {
        (f"/cpus/cpu@{hart}", "riscv,isa"): (RVH_ISA.encode() + b"\0", QEMU_ISA.encode() + b"\0")
        for hart in range(harts)
    }
    assert ours["/cpus/cpu@0"].get_str("mmu-type") == "riscv,sv48"  # compared above, named here
    assert qemu.boot_cpuid_phys == ours.boot_cpuid_phys == 0
    assert qemu.reservations == ours.reservations == []

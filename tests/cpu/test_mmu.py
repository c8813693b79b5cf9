"""Page-table walks over synthetic page tables: one row per step of the privileged spec's
algorithm (4.3.2, with Sv48 in 4.5 and the G-stage's Sv39x4/Sv48x4 in 8.5), run on a real hart.

Each row builds page tables in guest RAM (``PageTables``), points satp (or hgatp, with vsatp
Bare) at them and makes one access from M-mode with mstatus.MPRV, so that the load or store is
translated and checked as in mode MPP (and V = MPV, 8.4.1); instruction fetches drop to the mode
with mret instead (MPRV does not apply to fetches).  The outcome is read from the hart: the
value loaded, the memory written, the PTE after the walk (A and D), or the trap's mcause,
mtval and mtval2.  Expected outcomes are the spec's:

* 4.3.2 step 2: a PTE access that PMP denies raises an access fault for the original access.
* step 3: V = 0, or W = 1 with R = 0, or a reserved bit set: page fault.
* step 4: R = X = 0 is a pointer to the next level; a pointer at level 0: page fault.
* step 5: R/W/X against the access, MXR makes executable pages readable, U against the mode:
  S-mode touches U pages only with SUM and never executes them; U-mode only U pages.
* step 6: a superpage whose low PPN fields are not zero is misaligned: page fault.
* step 7: A clear, or D clear on a store: rvh sets the bits in the PTE (as QEMU 7.2 does),
  which the spec allows in place of a page fault.
* 4.3.1/4.5.1: a virtual address whose bits above the top VPN are not all equal to its top
  bit is not canonical: page fault.
* 8.5.1: G-stage PTEs are checked as U-mode accesses (U must be set); guest physical
  addresses are 41 (Sv39x4) or 50 (Sv48x4) bits, beyond that a guest-page fault; the root table
  has 2048 entries; a guest-page fault writes the guest physical address >> 2 to mtval2 and
  the guest virtual address to mtval (8.6).  A VS-stage PTE whose guest physical address the
  G-stage cannot translate is a guest-page fault for the original access.
* 3.7.1: PMP checks the physical address of the access itself too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from support import run_asm

pytestmark = pytest.mark.usefixtures("toolchain")

# PTE bits (4.3.1)
V, R, W, X, U, G, A, D = (1 << bit for bit in range(8))
RWX = R | W | X
RESERVED_BIT = 1 << 54  # bits 60:54 are reserved (4.4.1)

# exception codes (table 3.6, 8.6)
FETCH_ACCESS, LOAD_ACCESS, STORE_ACCESS = 1, 5, 7
FETCH_PAGE, LOAD_PAGE, STORE_PAGE = 12, 13, 15
FETCH_GUEST_PAGE, LOAD_GUEST_PAGE, STORE_GUEST_PAGE = 20, 21, 23
ECALL_FROM = {"U": 8, "S": 9, "VU": 8, "VS": 10}
PAGE_FAULT = {"load": LOAD_PAGE, "store": STORE_PAGE, "fetch": FETCH_PAGE}
GUEST_PAGE_FAULT = {"load": LOAD_GUEST_PAGE, "store": STORE_GUEST_PAGE, "fetch": FETCH_GUEST_PAGE}
ACCESS_FAULT = {"load": LOAD_ACCESS, "store": STORE_ACCESS, "fetch": FETCH_ACCESS}

SCHEMES = {  # satp/hgatp MODE, levels, root-table index bits
    "sv39": (8, 3, 9),
    "sv48": (9, 4, 9),
    "sv39x4": (8, 3, 11),
    "sv48x4": (9, 4, 11),
}
# The address each scheme translates: distinct indices at every level, non-zero page offset,
# and for the x4 schemes a bit of the root index beyond the 9 a non-x4 table has.
ADDRESS = {
    "sv39": 0x0000_0000_4040_3008,
    "sv48": 0x0000_0080_8040_3008,
    "sv39x4": 0x0000_0100_4040_3008,  # bit 40: root index 0x401
    "sv48x4": 0x0001_0080_8040_3008,  # bit 48: root index 0x201
}
# Where a leaf at each level maps (aligned to its size; RAM is 0x8000_0000..0x80ff_ffff).
LEAF_BASE = {0: 0x8070_0000, 1: 0x8060_0000, 2: 0x8000_0000, 3: 0x0}
TABLES = 0x8080_0000  # page tables, one per 16 KiB (an x4 root is 16 KiB, 16 KiB-aligned)
MARKER = 0x5EED_CAFE_0000_0073  # low word: ecall, so a fetch that reaches it traps with ecall
STORED = 0x0123_4567_89AB_CDEF


def physical(va: int, level: int) -> int:
    """Where a leaf at ``level`` maps ``va`` (step 8: superpages keep the low VPNs of va)."""
    offset_bits = 12 + 9 * level
    return LEAF_BASE[level] | (va & ((1 << offset_bits) - 1))


class PageTables:
    """Page tables built in Python and written into guest RAM before the hart runs."""

    def __init__(self, scheme: str, base: int = TABLES) -> None:
        self.mode, self.levels, self.root_bits = SCHEMES[scheme]
        self.entries: dict[int, int] = {}
        self.next = base
        self.root = self.new_table()

    def new_table(self) -> int:
        address, self.next = self.next, self.next + 0x4000
        return address

    def map(self, va: int, leaf_level: int, pa_base: int, flags: int) -> list[int]:
        """Map ``va`` with a leaf at ``leaf_level``; returns the PTE addresses walked, from
        the root down."""
        table, walked = self.root, []
        for level in range(self.levels - 1, leaf_level - 1, -1):
            bits = self.root_bits if level == self.levels - 1 else 9
            pte_address = table + ((va >> (12 + 9 * level)) & ((1 << bits) - 1)) * 8
            walked.append(pte_address)
            if level == leaf_level:
                self.entries[pte_address] = (pa_base >> 12) << 10 | flags
            elif pte_address in self.entries:
                table = (self.entries[pte_address] >> 10) << 12
            else:
                table = self.new_table()
                self.entries[pte_address] = (table >> 12) << 10 | V
        return walked

    def atp(self) -> int:
        return self.mode << 60 | self.root >> 12

    def data(self) -> dict[int, bytes]:
        return {address: pte.to_bytes(8, "little") for address, pte in self.entries.items()}


@dataclass
class Access:
    """One access through one set of tables and what the hart did with it."""

    scheme: str
    leaf_level: int = 0
    flags: int = V | RWX | A | D
    access: str = "load"  # load, store or fetch
    mode: str = "S"  # S or U (satp), VS or VU (hgatp, vsatp Bare)
    va: int | None = None
    edit: Callable[[PageTables, list[int]], None] | None = None  # changes the tables
    mstatus: int = 0  # SUM (bit 18), MXR (bit 19)
    pmp_deny: int | None = None  # a 4 KiB page PMP denies to S and U
    extra: dict[int, bytes] = field(default_factory=dict)

    @property
    def address(self) -> int:
        return ADDRESS[self.scheme] if self.va is None else self.va

    @property
    def guest(self) -> bool:
        return self.mode.startswith("V")


@dataclass
class Outcome:
    cause: int | None  # None: the access completed
    tval: int
    tval2: int
    loaded: int
    ptes: list[int]  # the walked PTEs after the access
    stored: int  # the 8 bytes at the physical target after the access


def pmp_setup(deny: int | None) -> str:
    # entry 0 denies one 4 KiB page (NAPOT, no permission), entry 1 allows everything else;
    # S and U accesses that match no entry fail (3.7.1)
    if deny is None:
        return "li t0, -1\ncsrw pmpaddr0, t0\nli t0, 0x1f\ncsrw pmpcfg0, t0"
    return f"""
        li t0, {(deny >> 2) | 0x1FF}
        csrw pmpaddr0, t0
        li t0, -1
        csrw pmpaddr1, t0
        li t0, 0x1f18
        csrw pmpcfg0, t0
"""


def run(row: Access, tables: PageTables, walked: list[int], target: int) -> Outcome:
    mpp = 1 if row.mode in ("S", "VS") else 0
    mpv = 1 if row.guest else 0
    atp = "hgatp" if row.guest else "satp"
    if row.access == "fetch":
        access = f"""
        li t0, {row.address:#x}
        csrw mepc, t0
        mret
"""
    else:
        instruction = "ld a1, 0(a0)" if row.access == "load" else "sd a2, 0(a0)"
        access = f"""
        li a0, {row.address:#x}
        li a2, {STORED:#x}
        li t0, 1 << 17              # mstatus.MPRV: loads and stores as in MPP (and MPV)
        csrs mstatus, t0
        {instruction}
        csrc mstatus, t0
        j __snippet_end
"""
    data = {target: MARKER.to_bytes(8, "little"), **tables.data(), **row.extra}
    s = run_asm(
        f"""
        .option norvc
        li s10, -1
        la t0, 90f
        csrw mtvec, t0
        {pmp_setup(row.pmp_deny)}
        li t0, {tables.atp():#x}
        csrw {atp}, t0
        sfence.vma
        .word 0x62000073            # hfence.gvma (the assembler's -march has no H)
        li t0, (3 << 11) | (1 << 39) | (1 << 18) | (1 << 19)
        csrc mstatus, t0            # MPP, MPV, SUM, MXR
        li t0, {mpp << 11 | mpv << 39 | row.mstatus:#x}
        csrs mstatus, t0
        {access}
        .balign 4
    90: csrr s10, mcause
        csrr s11, mtval
        csrr s9, mtval2
        j __snippet_end
""",
        data=data,
    )
    cause = None if s.x(26) == (1 << 64) - 1 else s.x(26)
    return Outcome(
        cause=cause,
        tval=s.x(27),
        tval2=s.x(25),
        loaded=s.x(11),
        ptes=[s.read(address, 8) for address in walked],
        stored=s.read(target, 8),
    )


def walk(row: Access) -> tuple[Outcome, list[int], int]:
    tables = PageTables(row.scheme)
    flags = row.flags | (U if row.guest and row.mode == "VS" else 0)
    walked = tables.map(row.address, row.leaf_level, LEAF_BASE[row.leaf_level], flags)
    if row.edit is not None:
        row.edit(tables, walked)
    target = physical(row.address, row.leaf_level)
    return run(row, tables, walked, target), walked, target


def expect_success(row: Access) -> Outcome:
    outcome, _, _ = walk(row)
    if row.access == "fetch":
        assert outcome.cause == ECALL_FROM[row.mode], f"fetch: cause {outcome.cause}"
    else:
        assert outcome.cause is None, f"cause {outcome.cause}, tval {outcome.tval:#x}"
    if row.access == "load":
        assert outcome.loaded == MARKER
    if row.access == "store":
        assert outcome.stored == STORED
    else:
        assert outcome.stored == MARKER
    return outcome


def expect_fault(row: Access, cause: int, tval2: int = 0) -> Outcome:
    outcome, _, _ = walk(row)
    assert outcome.cause == cause, f"expected cause {cause}, got {outcome.cause}"
    assert outcome.tval == row.address, "mtval: the faulting virtual address (3.1.16)"
    assert outcome.tval2 == tval2, "mtval2: guest physical address >> 2, or 0 (8.6)"
    assert outcome.stored == MARKER, "a faulting store writes nothing"
    return outcome


def set_bits(level_from_root: int, bits: int, clear: int = 0):
    def edit(tables: PageTables, walked: list[int]) -> None:
        address = walked[level_from_root]
        tables.entries[address] = (tables.entries[address] | bits) & ~clear

    return edit


FIRST_STAGE = ["sv39", "sv48"]
ALL_SCHEMES = ["sv39", "sv48", "sv39x4", "sv48x4"]


def mode_of(scheme: str) -> str:
    return "VS" if scheme.endswith("x4") else "S"


def fault_of(scheme: str, access: str, address: int) -> tuple[int, int]:
    """(cause, mtval2) of a translation fault on ``address`` in ``scheme``."""
    if scheme.endswith("x4"):
        return GUEST_PAGE_FAULT[access], address >> 2
    return PAGE_FAULT[access], 0


def levels_of(scheme: str) -> list[int]:
    return list(range(SCHEMES[scheme][1]))


# ---- step 4: a leaf at every level, steps 6 and 8: the address it maps to ------------------


@pytest.mark.parametrize("access", ["load", "store", "fetch"])
@pytest.mark.parametrize(
    ("scheme", "level"), [(s, level) for s in ALL_SCHEMES for level in levels_of(s)]
)
def test_leaf_at_each_level(scheme, level, access):
    expect_success(Access(scheme, level, access=access, mode=mode_of(scheme)))


# ---- step 3: invalid, W without R, reserved bits ------------------------------------------


@pytest.mark.parametrize("access", ["load", "store", "fetch"])
@pytest.mark.parametrize(
    ("scheme", "level"), [(s, level) for s in ALL_SCHEMES for level in levels_of(s)]
)
def test_invalid_pte_at_each_level(scheme, level, access):
    # the leaf is at level 0; the PTE at ``level`` (a pointer above 0) has V = 0
    depth = SCHEMES[scheme][1] - 1 - level
    row = Access(scheme, 0, access=access, mode=mode_of(scheme), edit=set_bits(depth, 0, V))
    expect_fault(row, *fault_of(scheme, access, row.address))


@pytest.mark.parametrize("access", ["load", "store"])
@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_write_without_read_is_reserved(scheme, access):
    row = Access(scheme, 0, flags=V | W | A | D, access=access, mode=mode_of(scheme))
    expect_fault(row, *fault_of(scheme, access, row.address))


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_write_execute_without_read_is_reserved(scheme):
    row = Access(scheme, 0, flags=V | W | X | A | D, access="fetch", mode=mode_of(scheme))
    expect_fault(row, *fault_of(scheme, "fetch", row.address))


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_reserved_bit_set_in_a_leaf(scheme):
    row = Access(scheme, 0, mode=mode_of(scheme), edit=set_bits(-1, RESERVED_BIT))
    expect_fault(row, *fault_of(scheme, "load", row.address))


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_reserved_bit_set_in_a_pointer(scheme):
    row = Access(scheme, 0, mode=mode_of(scheme), edit=set_bits(0, RESERVED_BIT))
    expect_fault(row, *fault_of(scheme, "load", row.address))


# ---- step 4: a pointer at the last level ----------------------------------------------------


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_pointer_at_level_zero(scheme):
    # the level-0 PTE has R = W = X = 0: a pointer with nowhere to go
    row = Access(scheme, 0, mode=mode_of(scheme), edit=set_bits(-1, 0, RWX))
    expect_fault(row, *fault_of(scheme, "load", row.address))


# ---- step 6: misaligned superpages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "level"), [(s, level) for s in ALL_SCHEMES for level in levels_of(s) if level]
)
def test_misaligned_superpage(scheme, level):
    # PPN[0] = 1 in a superpage leaf: not aligned to the superpage's size
    row = Access(scheme, level, mode=mode_of(scheme), edit=set_bits(-1, 1 << 10))
    expect_fault(row, *fault_of(scheme, "load", row.address))


# ---- step 5: permissions ---------------------------------------------------------------------
SUM, MXR = 1 << 18, 1 << 19

# (mode, leaf flags, access, mstatus, page fault?) for the first stage
PERMISSIONS = [
    ("S", V | R | A, "load", 0, False),
    ("S", V | R | A, "store", 0, True),  # not writable
    ("S", V | R | A, "fetch", 0, True),  # not executable
    ("S", V | X | A, "load", 0, True),  # execute-only
    ("S", V | X | A, "load", MXR, False),  # MXR: executable is readable
    ("S", V | X | A, "fetch", 0, False),
    ("S", V | R | W | A | D, "fetch", 0, True),
    ("S", V | RWX | U | A | D, "load", 0, True),  # a user page, SUM clear
    ("S", V | RWX | U | A | D, "load", SUM, False),
    ("S", V | RWX | U | A | D, "store", SUM, False),
    ("S", V | RWX | U | A | D, "fetch", SUM, True),  # S never executes user pages
    ("U", V | RWX | U | A | D, "load", 0, False),
    ("U", V | RWX | U | A | D, "store", 0, False),
    ("U", V | RWX | U | A | D, "fetch", 0, False),
    ("U", V | RWX | A | D, "load", 0, True),  # a supervisor page
    ("U", V | RWX | A | D, "load", SUM, True),  # SUM does not open them to U
    ("U", V | RWX | A | D, "fetch", 0, True),
    ("U", V | X | U | A, "load", MXR, False),
]


@pytest.mark.parametrize("scheme", FIRST_STAGE)
@pytest.mark.parametrize(("mode", "flags", "access", "mstatus", "faults"), PERMISSIONS)
def test_first_stage_permissions(scheme, mode, flags, access, mstatus, faults):
    row = Access(scheme, 0, flags=flags, access=access, mode=mode, mstatus=mstatus)
    if faults:
        expect_fault(row, PAGE_FAULT[access])
    else:
        expect_success(row)


# G-stage: every access is a U-mode access (8.5.1), from VS- and VU-mode alike
G_PERMISSIONS = [
    ("VS", V | R | U | A, "load", 0, False),
    ("VS", V | R | U | A, "store", 0, True),
    ("VS", V | R | U | A, "fetch", 0, True),
    ("VS", V | X | U | A, "load", 0, True),
    ("VS", V | X | U | A, "load", MXR, False),  # mstatus.MXR applies to the G-stage
    ("VS", V | RWX | A | D, "load", 0, True),  # U clear: no G-stage access at all
    ("VS", V | RWX | A | D, "fetch", 0, True),
    ("VU", V | RWX | U | A | D, "load", 0, False),
    ("VU", V | RWX | U | A | D, "store", 0, False),
    ("VU", V | RWX | A | D, "load", 0, True),
]


@pytest.mark.parametrize("scheme", ["sv39x4", "sv48x4"])
@pytest.mark.parametrize(("mode", "flags", "access", "mstatus", "faults"), G_PERMISSIONS)
def test_g_stage_permissions(scheme, mode, flags, access, mstatus, faults):
    # walk() adds U for VS rows; these rows give U themselves, so map them as VU's
    row = Access(scheme, 0, flags=flags, access=access, mode=mode, mstatus=mstatus)
    row_flags = flags
    row.edit = lambda tables, walked: tables.entries.__setitem__(
        walked[-1], (tables.entries[walked[-1]] & ~0x3FF) | row_flags
    )
    if faults:
        expect_fault(row, GUEST_PAGE_FAULT[access], tval2=row.address >> 2)
    else:
        expect_success(row)


# ---- step 7: A and D -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("access", "before", "after"),
    [("load", 0, A), ("store", 0, A | D), ("load", A, A), ("store", A, A | D), ("fetch", 0, A)],
)
@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_accessed_and_dirty_are_set(scheme, access, before, after):
    row = Access(scheme, 0, flags=V | RWX | before, access=access, mode=mode_of(scheme))
    outcome = expect_success(row)
    leaf = outcome.ptes[-1]
    assert leaf & (A | D) == after
    assert all(pte & (A | D) == 0 for pte in outcome.ptes[:-1]), "pointers are left alone"


# ---- canonical addresses (4.3.1, 4.5.1) and the size of guest physical addresses (8.5.1) ----


@pytest.mark.parametrize(
    ("scheme", "address"),
    [
        ("sv39", ADDRESS["sv39"] | 1 << 63),  # bit 63 differs from bit 38
        ("sv39", ADDRESS["sv39"] | 1 << 39),
        ("sv48", ADDRESS["sv48"] | 1 << 63),  # bit 63 differs from bit 47
        ("sv48", ADDRESS["sv48"] | 1 << 48),
    ],
)
@pytest.mark.parametrize("access", ["load", "store", "fetch"])
def test_non_canonical_address(scheme, address, access):
    # the tables map the address's VPN fields (the same as the canonical address's): the
    # walk must not start
    expect_fault(Access(scheme, 0, access=access, va=address), PAGE_FAULT[access])


@pytest.mark.parametrize(("scheme", "top_bit"), [("sv39", 38), ("sv48", 47)])
def test_upper_half_address(scheme, top_bit):
    # canonical with the top bit set: bits 63..top_bit all one, mapped like any other
    address = ADDRESS[scheme] | ((1 << 64) - (1 << top_bit))
    expect_success(Access(scheme, 0, va=address))


@pytest.mark.parametrize(("scheme", "bits"), [("sv39x4", 41), ("sv48x4", 50)])
@pytest.mark.parametrize("access", ["load", "store", "fetch"])
def test_guest_physical_address_too_wide(scheme, bits, access):
    address = ADDRESS[scheme] | 1 << bits
    row = Access(scheme, 0, access=access, mode="VS", va=address)
    expect_fault(row, GUEST_PAGE_FAULT[access], tval2=address >> 2)


# ---- PMP on the walk (step 2) and on the access (3.7.1) ------------------------------------


@pytest.mark.parametrize("access", ["load", "store", "fetch"])
@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_pmp_denies_the_root_table(scheme, access):
    # the page of the root table that holds the PTE the walk reads first
    root_pte = PageTables(scheme).map(ADDRESS[scheme], 0, LEAF_BASE[0], V)[0]
    row = Access(scheme, 0, access=access, mode=mode_of(scheme), pmp_deny=root_pte & ~0xFFF)
    expect_fault(row, ACCESS_FAULT[access])


@pytest.mark.parametrize("access", ["load", "store", "fetch"])
@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_pmp_denies_the_page(scheme, access):
    row = Access(scheme, 0, access=access, mode=mode_of(scheme), pmp_deny=LEAF_BASE[0])
    expect_fault(row, ACCESS_FAULT[access])


# ---- two stages: the VS-stage's page-table accesses go through the G-stage (8.5) ----------


@pytest.mark.parametrize(("scheme", "g_scheme"), [("sv39", "sv39x4"), ("sv48", "sv48x4")])
@pytest.mark.parametrize("access", ["load", "store"])
def test_vs_stage_table_outside_the_g_stage(scheme, g_scheme, access):
    """vsatp points at a guest physical table the G-stage does not map: a guest-page fault
    for the original access, mtval2 = the PTE's guest physical address >> 2, mtval = the guest
    virtual address."""
    vs_tables = PageTables(scheme, base=TABLES)
    va = ADDRESS[scheme]
    walked = vs_tables.map(va, 0, LEAF_BASE[0], V | RWX | A | D)
    g_tables = PageTables(g_scheme, base=TABLES + 0x10_0000)
    g_tables.map(LEAF_BASE[0], 0, LEAF_BASE[0], V | RWX | U | A | D)  # only the data page
    outcome = run_two_stage(vs_tables, g_tables, va, access, walked)
    assert outcome.cause == GUEST_PAGE_FAULT[access]
    assert outcome.tval == va
    assert outcome.tval2 == walked[0] >> 2, "the root PTE's guest physical address"


@pytest.mark.parametrize(("scheme", "g_scheme"), [("sv39", "sv39x4"), ("sv48", "sv48x4")])
def test_two_stages_compose(scheme, g_scheme):
    """VS-stage tables at guest physical addresses the G-stage maps 1:1, and a leaf mapping
    the guest virtual address to a guest physical page with no RAM behind it, which the G-stage
    maps to the data page: both translations apply."""
    vs_tables = PageTables(scheme, base=TABLES)
    va = ADDRESS[scheme]
    guest_page = 0x1_0000_0000  # a guest physical page with no RAM behind it at that address
    walked = vs_tables.map(va, 0, guest_page, V | RWX | A | D)
    g_tables = PageTables(g_scheme, base=TABLES + 0x10_0000)
    for table in range(TABLES, vs_tables.next, 0x1000):
        g_tables.map(table, 0, table, V | RWX | U | A | D)  # the VS tables, identity
    g_tables.map(guest_page, 0, LEAF_BASE[0], V | RWX | U | A | D)
    outcome = run_two_stage(vs_tables, g_tables, va, "load", walked)
    assert outcome.cause is None
    assert outcome.loaded == MARKER


def run_two_stage(
    vs_tables: PageTables, g_tables: PageTables, va: int, access: str, walked: list[int]
) -> Outcome:
    target = physical(va, 0)
    instruction = "ld a1, 0(a0)" if access == "load" else "sd a2, 0(a0)"
    data = {target: MARKER.to_bytes(8, "little"), **vs_tables.data(), **g_tables.data()}
    s = run_asm(
        f"""
        .option norvc
        li s10, -1
        la t0, 90f
        csrw mtvec, t0
        {pmp_setup(None)}
        li t0, {vs_tables.atp():#x}
        csrw vsatp, t0
        li t0, {g_tables.atp():#x}
        csrw hgatp, t0
        .word 0x62000073            # hfence.gvma
        .word 0x22000073            # hfence.vvma
        li t0, 3 << 11
        csrc mstatus, t0
        li t0, (1 << 11) | (1 << 39)  # MPP = S, MPV = 1: VS-mode
        csrs mstatus, t0
        li a0, {va:#x}
        li a2, {STORED:#x}
        li t0, 1 << 17
        csrs mstatus, t0
        {instruction}
        csrc mstatus, t0
        j __snippet_end
        .balign 4
    90: csrr s10, mcause
        csrr s11, mtval
        csrr s9, mtval2
        j __snippet_end
""",
        data=data,
    )
    cause = None if s.x(26) == (1 << 64) - 1 else s.x(26)
    return Outcome(cause, s.x(27), s.x(25), s.x(11), [], s.read(target, 8))

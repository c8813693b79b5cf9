"""Page-table walks over synthetic tables, one row per step of the spec's algorithm (privileged
spec 4.3.2 for Sv39, 8.5 for the two-stage walk of the H extension).

The tables are written straight into guest RAM and ``mmu.translate`` is called directly, so each
row checks one rule: the status (OK or the exception cause), the physical address, and the
A/D bits or trap values the walk leaves behind."""

import struct

import pytest

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.cpu.mmu import (
    ACCESS_EXECUTE,
    ACCESS_READ,
    ACCESS_READ_EXECUTABLE,
    ACCESS_WRITE,
    OK,
    PSEUDO_PTE_READ,
    PSEUDO_PTE_WRITE,
    local_context,
    translate,
)
from rvh.isa.causes import Exception_
from rvh.isa.csrs import MSTATUS_MXR, MSTATUS_SUM, csr_number
from rvh.machine import Machine

RAM = 0x8000_0000
V, R, W, X, U, A, D = 1, 2, 4, 8, 16, 64, 128
SV39 = 8 << 60  # satp/vsatp MODE = Sv39; hgatp MODE = Sv39x4 is the same number

LOAD_PAGE_FAULT = Exception_.LOAD_PAGE_FAULT
STORE_PAGE_FAULT = Exception_.STORE_PAGE_FAULT
FETCH_PAGE_FAULT = Exception_.INSTRUCTION_PAGE_FAULT


class Board:
    """A hart with PMP open to S and U, and page tables allocated from a pool in RAM."""

    def __init__(self) -> None:
        self.machine = Machine(MachineConfig(memory=16 << 20), output=lambda _: None)
        self.hart = self.machine.harts[0]
        self.hart.set_csr("pmpaddr0", (1 << 54) - 1)  # NAPOT: all of memory
        self.hart.set_csr("pmpcfg0", 0x1F)  # R W X, NAPOT
        self.hart.state[L.PMP_ACTIVE] = 1
        self.next_table = RAM + 0x10_0000

    def read(self, address: int) -> int:
        offset = address - RAM
        return int(struct.unpack_from("<Q", self.hart.memory, offset)[0])

    def write(self, address: int, value: int) -> None:
        struct.pack_into("<Q", self.hart.memory, address - RAM, value)

    def table(self, size: int = 4096) -> int:
        address = (self.next_table + size - 1) & -size
        self.next_table = address + size
        return address

    def map(self, root: int, va: int, pa: int, flags: int, *, level: int = 0, x4: bool = False):
        """Map va -> pa with a leaf at ``level`` (0: 4 KiB, 1: 2 MiB); returns the leaf's PTE
        address.  ``x4``: a G-stage table, whose root index is 11 bits wide."""
        table = root
        for at in (2, 1, 0):
            bits = 11 if (x4 and at == 2) else 9
            entry = table + 8 * ((va >> (12 + 9 * at)) & ((1 << bits) - 1))
            if at == level:
                self.write(entry, (pa >> 12) << 10 | flags)
                return entry
            if not self.read(entry) & V:
                self.write(entry, (self.table() >> 12) << 10 | V)
            table = (self.read(entry) >> 10) << 12
        raise AssertionError("level out of range")

    def translate(self, va: int, access: int, *, priv: int = L.PRIV_S, virt: int = 0, size=8):
        state = self.hart.state
        sum_bit = (self.hart.csr("vsstatus" if virt else "mstatus") & MSTATUS_SUM) != 0
        context = local_context(priv, virt, sum_bit)
        address, status, _ = translate(
            state, self.hart.machine, self.hart.memory, va, size, access, context
        )
        return int(address), int(status)


VA = 0x4000_1238
PAGE = RAM + 0x20_0000  # the 4 KiB data page of the single-stage rows


def single_stage(flags: int, *, mstatus: int = 0, va: int = VA) -> Board:
    board = Board()
    root = board.table()
    board.map(root, va, PAGE, flags)
    board.hart.set_csr("satp", SV39 | root >> 12)
    board.hart.state[L.CSR_BASE + csr_number("mstatus")] |= mstatus
    return board


# (row, leaf flags, mstatus bits, mode, access, expected status) for Sv39 with a 4 KiB leaf
LEAF_ROWS = [
    ("step 5: a readable page loads", V | R | A, 0, L.PRIV_S, ACCESS_READ, OK),
    ("step 3: V clear", R | W | A | D, 0, L.PRIV_S, ACCESS_READ, LOAD_PAGE_FAULT),
    ("step 3: W without R", V | W | A | D, 0, L.PRIV_S, ACCESS_WRITE, STORE_PAGE_FAULT),
    ("step 3: reserved bit 60", V | R | A | 1 << 60, 0, L.PRIV_S, ACCESS_READ, LOAD_PAGE_FAULT),
    ("step 5: load needs R", V | X | A, 0, L.PRIV_S, ACCESS_READ, LOAD_PAGE_FAULT),
    ("step 5: MXR reads X pages", V | X | A, MSTATUS_MXR, L.PRIV_S, ACCESS_READ, OK),
    ("step 5: store needs W", V | R | A, 0, L.PRIV_S, ACCESS_WRITE, STORE_PAGE_FAULT),
    ("step 5: fetch needs X", V | R | W | A | D, 0, L.PRIV_S, ACCESS_EXECUTE, FETCH_PAGE_FAULT),
    ("step 5: HLVX needs X", V | R | A, 0, L.PRIV_S, ACCESS_READ_EXECUTABLE, LOAD_PAGE_FAULT),
    ("step 5: S and a U page", V | R | U | A, 0, L.PRIV_S, ACCESS_READ, LOAD_PAGE_FAULT),
    ("step 5: S, a U page, SUM", V | R | U | A, MSTATUS_SUM, L.PRIV_S, ACCESS_READ, OK),
    (
        "step 5: S never runs U code",
        V | R | X | U | A,
        MSTATUS_SUM,
        L.PRIV_S,
        ACCESS_EXECUTE,
        FETCH_PAGE_FAULT,
    ),
    ("step 5: U and an S page", V | R | A, 0, L.PRIV_U, ACCESS_READ, LOAD_PAGE_FAULT),
    ("step 5: U and a U page", V | R | U | A, 0, L.PRIV_U, ACCESS_READ, OK),
]


@pytest.mark.parametrize(
    "flags, mstatus, priv, access, expected",
    [row[1:] for row in LEAF_ROWS],
    ids=[row[0] for row in LEAF_ROWS],
)
def test_leaf_checks(flags, mstatus, priv, access, expected):
    board = single_stage(flags, mstatus=mstatus)
    address, status = board.translate(VA, access, priv=priv)
    assert status == expected
    if expected == OK:
        assert address == PAGE | (VA & 0xFFF)  # step 8


def test_step_2_page_table_outside_memory_is_an_access_fault():
    board = Board()
    board.hart.set_csr("satp", SV39 | 0x1000_0000 >> 12)  # root in the UART's page
    _, status = board.translate(VA, ACCESS_WRITE)
    assert status == Exception_.STORE_ACCESS_FAULT


def test_step_4_non_leaf_with_a_set_is_a_page_fault():
    board = single_stage(V | R | A)
    root = board.hart.csr("satp") << 12 & ((1 << 56) - 1)
    entry = root + 8 * ((VA >> 30) & 0x1FF)
    board.write(entry, board.read(entry) | A)
    assert board.translate(VA, ACCESS_READ)[1] == LOAD_PAGE_FAULT


def test_step_4_pointer_at_the_last_level_is_a_page_fault():
    board = single_stage(V)  # a non-leaf PTE where the 4 KiB leaf should be
    assert board.translate(VA, ACCESS_READ)[1] == LOAD_PAGE_FAULT


def test_step_6_misaligned_superpage_is_a_page_fault():
    board = Board()
    root = board.table()
    board.map(root, VA, RAM + 0x1000, V | R | A, level=1)  # 2 MiB leaf, ppn[0] != 0
    board.hart.set_csr("satp", SV39 | root >> 12)
    assert board.translate(VA, ACCESS_READ)[1] == LOAD_PAGE_FAULT


def test_step_7_sets_a_on_load_and_d_on_store():
    board = Board()
    root = board.table()
    leaf = board.map(root, VA, PAGE, V | R | W)
    board.hart.set_csr("satp", SV39 | root >> 12)
    assert board.translate(VA, ACCESS_READ)[1] == OK
    assert board.read(leaf) & (A | D) == A
    assert board.translate(VA, ACCESS_WRITE)[1] == OK
    assert board.read(leaf) & (A | D) == A | D


def test_step_8_superpage_takes_the_low_bits_from_the_address():
    board = Board()
    root = board.table()
    board.map(root, VA, RAM + 0x40_0000, V | R | A, level=1)
    board.hart.set_csr("satp", SV39 | root >> 12)
    address, status = board.translate(VA, ACCESS_READ)
    assert status == OK
    assert address == RAM + 0x40_0000 + (VA & 0x1F_FFFF)


def test_non_canonical_address_is_a_page_fault():
    board = single_stage(V | R | A)
    assert board.translate(VA | 1 << 40, ACCESS_READ)[1] == LOAD_PAGE_FAULT
    # the upper half is canonical: it walks (and finds nothing mapped there)
    assert board.translate(-(1 << 38) | VA, ACCESS_READ)[1] == LOAD_PAGE_FAULT


# ---- two stages (8.5) ----------------------------------------------------------------------

GUEST_CODE = RAM + 0x30_0000  # guest physical = host physical: the G-stage maps 1:1


def two_stage(table_flags: int, leaf_flags: int) -> tuple[Board, int]:
    """A guest whose VS-stage tables sit on pages the G-stage maps with ``table_flags``, and
    whose page VA maps to GUEST_CODE (G-stage: R W X).  Returns (board, VS leaf PTE address)."""
    board = Board()
    groot = board.table(16384)
    vs_root = board.table()
    leaf = board.map(vs_root, VA, GUEST_CODE, leaf_flags)
    for page in range(vs_root, board.next_table, 4096):
        board.map(groot, page, page, table_flags, x4=True)
    board.map(groot, GUEST_CODE, GUEST_CODE, V | R | W | X | U | A | D, x4=True)
    board.hart.set_csr("hgatp", SV39 | groot >> 12)
    board.hart.set_csr("vsatp", SV39 | vs_root >> 12)
    return board, leaf


@pytest.mark.parametrize("access", [ACCESS_READ, ACCESS_WRITE, ACCESS_EXECUTE])
def test_vs_page_table_reads_are_checked_as_loads_by_the_g_stage(access):
    # 8.5.1: the G-stage checks a VS-stage page-table access as an implicit load, whatever
    # the original access (tables on read-only, non-executable guest pages are fine)
    board, leaf = two_stage(V | R | U | A | D, V | R | W | X | A | D)
    address, status = board.translate(VA, access, virt=1)
    assert status == OK
    assert address == GUEST_CODE | (VA & 0xFFF)


def test_vs_a_d_update_is_a_store_for_the_g_stage_and_faults_as_the_original_access():
    # the VS leaf lacks A: the walk must write it, and the G-stage maps the table read-only,
    # so a load gets a load guest-page fault with the pseudo-instruction of a PTE write
    board, leaf = two_stage(V | R | U | A | D, V | R | W | X)
    address, status = board.translate(VA, ACCESS_READ, virt=1)
    assert status == Exception_.LOAD_GUEST_PAGE_FAULT
    assert board.hart.state[L.TRAP_TINST] == PSEUDO_PTE_WRITE
    assert board.hart.state[L.TRAP_TVAL2] == leaf >> 2  # the guest physical address of the PTE
    assert board.hart.state[L.TRAP_GVA] == 1


def test_vs_page_table_read_fault_reports_the_original_access():
    # the G-stage leaves the root table's page unmapped: a fetch is an instruction
    # guest-page fault with the pseudo-instruction of a PTE read
    board, _ = two_stage(0, V | R | W | X | A | D)
    _, status = board.translate(VA, ACCESS_EXECUTE, virt=1)
    assert status == Exception_.INSTRUCTION_GUEST_PAGE_FAULT
    assert board.hart.state[L.TRAP_TINST] == PSEUDO_PTE_READ
    vs_root = (board.hart.csr("vsatp") & ((1 << 44) - 1)) << 12
    assert board.hart.state[L.TRAP_TVAL2] == (vs_root + 8 * ((VA >> 30) & 0x1FF)) >> 2


def test_guest_physical_address_beyond_sv39x4_is_a_guest_page_fault():
    board, _ = two_stage(V | R | U | A | D, V | R | W | X | A | D)
    board.hart.set_csr("vsatp", 0)  # VS-stage Bare: the guest virtual address is the GPA
    gpa = 1 << 41  # Sv39x4 translates 41-bit guest physical addresses
    _, status = board.translate(gpa, ACCESS_WRITE, virt=1)
    assert status == Exception_.STORE_GUEST_PAGE_FAULT
    assert board.hart.state[L.TRAP_TVAL2] == gpa >> 2
    assert board.hart.state[L.TRAP_TINST] == -1  # the kernel fills in the transformed store


# ---- the remembered G-stage leaf (G_LEAF_*) ------------------------------------------------

GPA = RAM + 0x40_1238  # in the G-stage megapage of the rows below (VS-stage Bare)
HOST_A = RAM + 0x60_0000
HOST_B = RAM + 0x80_0000


def g_megapage(flags: int) -> tuple[Board, int]:
    """VS-stage Bare, the G-stage mapping GPA's 2 MiB with one leaf to HOST_A; returns (board,
    the leaf's PTE address)."""
    board = Board()
    groot = board.table(16384)
    leaf = board.map(groot, GPA, HOST_A, flags, level=1, x4=True)
    board.hart.set_csr("hgatp", SV39 | groot >> 12)
    return board, leaf


def test_the_g_stage_leaf_is_remembered_until_hfence_gvma():
    # a hart may keep a G-stage translation until HFENCE.GVMA (8.5, 8.3.2): the leaf remapped
    # without one still translates as before, and the fence (executed) drops it
    board, leaf = g_megapage(V | R | W | U | A | D)
    assert board.translate(GPA, ACCESS_READ, virt=1) == (HOST_A | (GPA & 0x1F_FFFF), OK)
    board.write(leaf, (HOST_B >> 12) << 10 | V | R | W | U | A | D)
    assert board.translate(GPA + 8, ACCESS_WRITE, virt=1)[0] == HOST_A | ((GPA + 8) & 0x1F_FFFF)
    code = RAM + 0x5000
    struct.pack_into("<I", board.hart.memory, code - RAM, 0x62000073)  # hfence.gvma x0, x0
    board.hart.pc = code
    board.hart.run(1)
    assert board.hart.pc == code + 4
    assert board.translate(GPA, ACCESS_READ, virt=1) == (HOST_B | (GPA & 0x1F_FFFF), OK)


def test_a_remembered_g_stage_leaf_still_checks_permissions_and_dirty():
    # read-only leaf: the store after a remembered load is a store guest-page fault
    board, _ = g_megapage(V | R | U | A | D)
    assert board.translate(GPA, ACCESS_READ, virt=1)[1] == OK
    assert board.translate(GPA, ACCESS_WRITE, virt=1)[1] == Exception_.STORE_GUEST_PAGE_FAULT
    assert board.hart.state[L.TRAP_TVAL2] == GPA >> 2
    # writable but clean: the first store walks again and sets D (the leaf remembered from
    # the load had none)
    board, leaf = g_megapage(V | R | W | U | A)
    assert board.translate(GPA, ACCESS_READ, virt=1)[1] == OK
    assert board.read(leaf) & D == 0
    assert board.translate(GPA, ACCESS_WRITE, virt=1)[1] == OK
    assert board.read(leaf) & D == D

"""The fast loop's share of the system instructions Linux is full of: fence and fence.i, CSR
reads the general path has found legal (layout.CSR_READ_KEYS) and rdtime.  Each snippet runs
twice, once as usual and once with a trace buffer (which keeps every instruction on the
general path, whose semantics are the definition): the results must be equal, and the checks
below say what they are."""

from __future__ import annotations

import numpy as np
import pytest
from support import needs_toolchain, run_asm

from rvh.cpu import layout as L
from rvh.cpu.trace import TRACE_FIELDS
from rvh.isa.causes import Exception_
from rvh.isa.csrs import SSTATUS_MASK

pytestmark = needs_toolchain

ILLEGAL = int(Exception_.ILLEGAL_INSTRUCTION)


def general_path_only(machine) -> None:
    machine.harts[0].trace = np.zeros(200_000 * TRACE_FIELDS, dtype=np.int64)


def twice(body: str) -> str:
    """``body`` run two times: the second time its instructions are decoded, so the fast loop
    may take them (the first time of any instruction is the general path's)."""
    return f"""
        li s1, 2
    10: {body}
        addi s1, s1, -1
        bnez s1, 10b
    """


def both_ways(source: str, registers: list[int], data: dict[int, bytes] | None = None) -> list[int]:
    fast = run_asm(source, data=data)
    general = run_asm(source, data=data, setup=general_path_only)
    values = [fast.x(r) for r in registers]
    assert values == [general.x(r) for r in registers]
    assert fast.hart.state[L.GENERAL_PATH] < general.hart.state[L.GENERAL_PATH]
    return values


def test_a_loop_of_fences_and_csr_reads_runs_in_the_fast_loop():
    source = """
        li t0, 1000
        csrw mscratch, t0
    1:  fence
        fence.i
        csrr a0, mscratch
        csrr a1, mstatus
        rdtime a2
        addi t0, t0, -1
        bnez t0, 1b
    """
    fast = run_asm(source)
    assert fast.x(10) == 1000
    # the first reads fill the cache, the rest of the loop never leaves the fast loop
    assert fast.hart.state[L.GENERAL_PATH] < 20
    both_ways(source, [10, 11, 12])


def test_a_csr_write_is_seen_by_the_next_read():
    source = twice("""
        li t1, 5
        csrw sscratch, t1
        csrr a0, sscratch
        csrr a0, sscratch
        li t1, 7
        csrw sscratch, t1
        csrr a1, sscratch
        csrsi sscratch, 8
        csrr a2, sscratch
    """)
    assert both_ways(source, [10, 11, 12]) == [5, 7, 15]


def test_sstatus_is_read_as_its_view_of_mstatus():
    source = twice("""
        li t1, 0x1888       # MPP = 3, SPIE, MPIE, SIE... bits sstatus shows only some of
        csrs mstatus, t1
        csrr a0, sstatus
        csrr a0, sstatus
        csrr a1, mstatus
        csrr a1, mstatus
    """)
    sstatus, mstatus = both_ways(source, [10, 11])
    assert mstatus & 0x1800 == 0x1800  # MPP
    assert sstatus & 0x1800 == 0  # not in sstatus
    assert sstatus == mstatus & SSTATUS_MASK


def test_time_read_in_the_fast_loop_is_the_general_paths():
    source = twice("""
        rdtime a0
        rdtime a0
        .rept 250
        addi t0, t0, 1
        .endr
        rdtime a1
    """)
    start, end = both_ways(source, [10, 11])
    assert end - start in (2, 3)  # 10 MHz mtime: 100 instructions a tick


def test_a_read_legal_in_m_mode_still_traps_in_s_mode():
    # mscratch is read (and remembered) in M-mode, then read again in S-mode: the key holds
    # the privilege, so the S-mode read goes to the general path and traps
    source = """
        li t0, -1
        csrw pmpaddr0, t0   # PMP entry 0: everything, for S-mode too (3.7.1)
        li t0, 0x1f
        csrw pmpcfg0, t0
        li s1, 2
    20: la t0, handler
        csrw mtvec, t0
        la t0, smode
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800        # MPP = S
        csrs mstatus, t0
        li t1, 42
        csrw mscratch, t1
        csrr a0, mscratch
        csrr a0, mscratch
        mret
    smode:
        csrr a1, mscratch
        li a2, 1
        .balign 4
    handler:
        csrr a3, mcause
        addi s1, s1, -1
        bnez s1, 20b
    """
    value, s_read, after, cause = both_ways(source, [10, 11, 12, 13])
    assert (value, s_read, after, cause) == (42, 0, 0, ILLEGAL)


ECALL_FROM_S = 9


@pytest.mark.parametrize("tm, expected", [(1, ECALL_FROM_S), (0, ILLEGAL)])
def test_time_from_s_mode_follows_mcounteren(tm, expected):
    source = f"""
        li t0, -1
        csrw pmpaddr0, t0   # PMP entry 0: everything, for S-mode too (3.7.1)
        li t0, 0x1f
        csrw pmpcfg0, t0
        li s1, 2
    20: la t0, handler
        csrw mtvec, t0
        li t0, {tm << 1}
        csrw mcounteren, t0
        la t0, smode
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800
        csrs mstatus, t0
        mret
    smode:
        rdtime a0
        rdtime a0
        ecall               # to M-mode: cause 9
        .balign 4
    handler:
        csrr a3, mcause
        addi s1, s1, -1
        bnez s1, 20b
    """
    (cause,) = both_ways(source, [13])
    assert cause == expected


# ---- CSR writes, sfence.vma and atomics in the fast loop -------------------------------------

MASK64 = (1 << 64) - 1


def test_plain_csr_writes_run_in_the_fast_loop():
    # sscratch, sepc, mscratch, stval...: their writes change the CSR and nothing else, so
    # after the first the fast loop does them (layout.CSR_WRITE_OK); the xepcs drop bit 0.
    # (CSRs whose read-cache index differs: mcause would evict sscratch)
    source = """
        li t0, 1000
        li a0, 0
    1:  csrrw a0, sscratch, a0      # rd = rs1: the old value is read before the write
        addi a0, a0, 1
        csrw mscratch, t0
        csrrs a1, mscratch, zero
        li t1, 0x80000123
        csrw sepc, t1
        csrr a2, sepc
        csrrsi a3, stval, 5
        csrrci a3, stval, 1
        csrr a4, stval
        addi t0, t0, -1
        bnez t0, 1b
        csrr a5, sscratch
    """
    fast = run_asm(source)
    assert fast.hart.state[L.GENERAL_PATH] < 40
    values = both_ways(source, [10, 11, 12, 13, 14, 15])
    # (a0, sscratch) go (0, 0) -> (1, 0) -> (1, 1) -> (2, 1) ...: (500, 500) after 1000 rounds
    assert values == [500, 1, 0x80000122, 5, 4, 500]


# Sv39 page tables built by the snippet: VA 0x4000_0000 and the page after it through a
# level-0 table (no superpage, so that an address fence concerns one page alone).  Four
# physical pages hold a marker value each.
ROOT, LEVEL1, LEVEL0 = 0x8010_0000, 0x8010_1000, 0x8010_2000
PAGES = [0x8020_0000, 0x8020_1000, 0x8020_2000, 0x8020_3000]
MARKERS = [0x11, 0x22, 0x33, 0x44]
VA0, VA1 = 0x4000_0000, 0x4000_1000
PTE_V, PTE_R, PTE_W, PTE_U, PTE_A, PTE_D = 1, 2, 4, 16, 64, 128
MPRV = 1 << 17


def pte(physical: int, flags: int) -> int:
    return ((physical >> 12) << 10) | flags


def satp(asid: int) -> int:
    return (8 << 60) | (asid << 44) | (ROOT >> 12)


def page_data() -> dict[int, bytes]:
    return {page: value.to_bytes(8, "little") for page, value in zip(PAGES, MARKERS, strict=True)}


# M-mode with MPP = S: with mstatus.MPRV set, loads and stores are translated as S-mode's
# (3.1.6.3) while the code runs untranslated.  s2 = the level-0 table, s3/s4 = the two pages,
# s5 = MPRV.  (PMP entry 0 lets S-mode reach all memory.)
TABLES = f"""
        li t0, -1
        csrw pmpaddr0, t0           # PMP entry 0: everything, for S-mode too (3.7.1)
        li t0, 0x1f
        csrw pmpcfg0, t0
        li s5, {MPRV}
        csrc mstatus, s5
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800
        csrs mstatus, t0
        li t0, {ROOT}
        li t1, {pte(LEVEL1, PTE_V)}
        sd t1, 8(t0)                # root[1]: VA 0x4000_0000 .. 0x7fff_ffff
        li t0, {LEVEL1}
        li t1, {pte(LEVEL0, PTE_V)}
        sd t1, 0(t0)
        li s2, {LEVEL0}
        li s3, {VA0}
        li s4, {VA1}
"""


def map_page(index: int, page: int, user: bool = False) -> str:
    """Point level-0 PTE ``index`` at PAGES[page] (stored untranslated: MPRV off for it)."""
    flags = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D | (PTE_U if user else 0)
    return f"""
        csrc mstatus, s5
        li t1, {pte(PAGES[page], flags)}
        sd t1, {8 * index}(s2)
        csrs mstatus, s5
    """


def test_an_address_fence_takes_the_new_pte_and_leaves_other_pages_cached():
    source = twice(f"""
        {TABLES}
        li t0, {satp(0)}
        csrw satp, t0
        {map_page(0, 0)}
        {map_page(1, 1)}
        sfence.vma
        ld a0, 0(s3)                # both pages cached
        ld a1, 0(s4)
        {map_page(0, 2)}
        {map_page(1, 3)}
        sfence.vma s3, zero         # remapped both, fence the first
        ld a2, 0(s3)                # the new PTE (4.2.1)
        ld a3, 0(s4)                # the old translation: its page was not fenced
        sfence.vma
        ld a4, 0(s4)
    """)
    fast = run_asm(source, data=page_data())
    general = run_asm(source, data=page_data(), setup=general_path_only)
    for run in (fast, general):
        assert [run.x(r) for r in range(10, 15)] == [0x11, 0x22, 0x33, 0x22, 0x44]
    assert fast.hart.state[L.GENERAL_PATH] < general.hart.state[L.GENERAL_PATH]


def test_an_asid_fence_leaves_the_other_address_space_cached():
    source = twice(f"""
        {TABLES}
        li t0, {satp(1)}
        csrw satp, t0
        {map_page(0, 0)}
        sfence.vma
        ld a0, 0(s3)                # cached for ASID 1
        li t0, {satp(2)}
        csrw satp, t0
        ld a1, 0(s3)                # and for ASID 2
        {map_page(0, 2)}
        li t1, 2
        sfence.vma zero, t1         # ASID 2 only
        ld a2, 0(s3)
        li t0, {satp(1)}
        csrw satp, t0
        ld a3, 0(s3)                # ASID 1 was not fenced
        li t1, 1
        sfence.vma zero, t1
        ld a4, 0(s3)
    """)
    for setup in (None, general_path_only):
        run = run_asm(source, data=page_data(), setup=setup)
        assert [run.x(r) for r in range(10, 15)] == [0x11, 0x11, 0x33, 0x11, 0x33]


def test_sstatus_sum_written_in_the_fast_loop_switches_the_translation():
    # a U page: S-mode reaches it only with sstatus.SUM (4.3.2 step 5).  The second round's
    # csrs/csrc run in the fast loop; after the csrc the cached SUM translation must not serve
    # the load, which faults (cause 13) and the handler skips it.
    source = f"""
        la t0, handler
        csrw mtvec, t0
        li s1, 2
    10: {TABLES}
        li t0, {satp(0)}
        csrw satp, t0
        {map_page(0, 0, user=True)}
        sfence.vma
        li a2, 0
        li t1, 0x40000              # SUM
        csrc sstatus, t1
        csrs sstatus, t1
        ld a1, 0(s3)
        csrc sstatus, t1
        ld a0, 0(s3)                # faults: a2 = mcause
        csrr a3, sstatus
        addi s1, s1, -1
        bnez s1, 10b
        j 20f
        .balign 4
    handler:
        csrr a2, mcause
        csrr t2, mepc
        addi t2, t2, 4
        csrw mepc, t2
        mret
    20:
    """
    loaded, cause, sstatus = both_ways(source, [11, 12, 13], page_data())
    assert (loaded, cause) == (0x11, 13)
    assert sstatus & 0x40000 == 0


def test_enabling_sie_with_an_interrupt_pending_takes_it_before_the_next_instruction():
    # STIP pending, delegated and enabled in sie: csrsi sstatus, SIE in S-mode lets it in at
    # once (3.1.6.1), so sepc is the instruction after the csrsi, both times round
    source = """
        li t0, -1
        csrw pmpaddr0, t0           # PMP entry 0: everything, for S-mode too (3.7.1)
        li t0, 0x1f
        csrw pmpcfg0, t0
        la t0, mhandler
        csrw mtvec, t0
        la t0, shandler
        csrw stvec, t0
        li t0, 0x20                 # STIP: delegated, enabled, pending
        csrw mideleg, t0
        csrw mie, t0
        csrs mip, t0
        li s1, 2
    10: la t0, smode
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800                # MPP = S
        csrs mstatus, t0
        mret
    smode:
        csrci sstatus, 2
        addi a4, a4, 1
        csrsi sstatus, 2
    after:
        addi a5, a5, 1              # never reached: the interrupt comes first
        .balign 4
    shandler:
        csrr a0, sepc
        csrr a1, scause
        ecall
        .balign 4
    mhandler:
        addi s1, s1, -1
        bnez s1, 10b
        csrw mie, zero
        la a2, after
    """
    sepc, scause, after, rounds, skipped = both_ways(source, [10, 11, 12, 14, 15])
    assert sepc == after
    assert scause == (1 << 63) | 5
    assert (rounds, skipped) == (2, 0)


def test_atomics_in_the_fast_loop():
    # LR/SC pairs, a failing SC, AMOs of both widths, and an AMO that rewrites an instruction
    # (the decode cache must drop it: the second round executes addi a5, a5, 1, not 2 again)
    source = """
        la s2, cell
        li s1, 2
    10: li t1, -5
        sd t1, 0(s2)
    1:  lr.d a0, (s2)
        addi t2, a0, 3
        sc.d a1, t2, (s2)
        bnez a1, 1b
        lr.w a2, (s2)
        sw zero, 0(s2)              # the value changes under the reservation
        sc.w a3, t2, (s2)           # fails: 1
        li t1, 7
        amoadd.d a4, t1, (s2)
        amomaxu.w t3, t1, (s2)
        ld a6, 0(s2)
        la t0, patch
        li t1, 0x00078793           # addi a5, a5, 0
        slli t2, s1, 20
        add t1, t1, t2              # addi a5, a5, s1
        amoswap.w zero, t1, (t0)
        fence.i
        .balign 4
    patch:
        .word 0x00000013            # nop, 4 bytes
        addi s1, s1, -1
        bnez s1, 10b
        j 20f
        .balign 8
    cell:
        .dword 0
    20:
    """
    values = both_ways(source, [10, 11, 12, 13, 14, 15, 16])
    expected = [-5, 0, -2, 1, 0xFFFF_FFFF_0000_0000, 3, 0xFFFF_FFFF_0000_0007]
    assert values == [value & MASK64 for value in expected]


def test_misaligned_doublewords_within_a_page_in_the_fast_loop():
    # ld/sd at offsets that are not multiples of 8, within a page and once across one (the
    # general path's), and a misaligned sd over an instruction that then runs: the decode
    # cache must drop it (the second round adds 1 to a5, not 2 again)
    source = """
        li s2, 0x80200ff0
        li s1, 2
    10: li t1, 0x0102030405060708
        sd t1, 0(s2)
        li t2, 0x1112131415161718
        sd t2, 8(s2)
        sd t1, 16(s2)               # the next page
        ld a0, 1(s2)
        ld a1, 5(s2)
        ld a2, 13(s2)               # across the page boundary
        addi t3, s2, 3
        sd t2, 0(t3)
        ld a3, 0(s2)
        la t0, patch
        li t1, 0x00078793           # addi a5, a5, 0
        slli t2, s1, 20
        add t1, t1, t2              # addi a5, a5, s1
        slli t1, t1, 16
        li t2, 0x0013000000000000   # the nops' halves around it
        or t1, t1, t2
        sd t1, 2(t0)                # bytes 2..9 of patch: the second word whole
        fence.i
        .balign 4
    patch:
        .word 0x00000013
        .word 0x00000013
        .word 0x00000013
        addi s1, s1, -1
        bnez s1, 10b
    """
    values = both_ways(source, [10, 11, 12, 13, 15])
    assert values == [
        0x1801020304050607,
        0x1415161718010203,
        0x0405060708111213,
        0x1415161718060708,
        3,
    ]


def test_an_sc_w_after_an_lr_d_compares_the_low_word():
    # an SC is a compare-and-swap at its width against the value the LR read: after an LR.D
    # of 0x1_0000_0005 an SC.W finds 5 in the low word, stores, and reports success (QEMU 7.2
    # stores and reports failure: the deviation sc-word-after-lr-double).  The lockstep
    # campaign met this (an SC of another width than its LR: the A chapter's choice).
    source = twice("""
        la s2, cell
        li t1, 0x100000005
        sd t1, 0(s2)
        lr.d a0, (s2)
        li t2, 0x11
        sc.w a1, t2, (s2)
        ld a2, 0(s2)
        lr.w a3, (s2)
        li t2, 0x22
        sc.w a4, t2, (s2)
        lw a5, 0(s2)
        j 20f
        .balign 8
    cell:
        .dword 0
    20:
    """)
    assert both_ways(source, [10, 11, 12, 14, 15]) == [0x100000005, 0, 0x100000011, 0, 0x22]

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


def both_ways(source: str, registers: list[int]) -> list[int]:
    fast = run_asm(source)
    general = run_asm(source, setup=general_path_only)
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

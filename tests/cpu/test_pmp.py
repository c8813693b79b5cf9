"""Physical memory protection (privileged spec 3.7): TOR, NA4 and NAPOT regions, the lowest
matching entry deciding, partial matches failing, locked entries binding M-mode, and S/U
accesses failing when no entry matches."""

from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

# Records mcause/mtval in s2/s3 and skips the faulting instruction (all 4 bytes long here).
HANDLER = """
    la t0, 9f
    csrw mtvec, t0
    j 8f
.balign 4
9:  csrr s2, mcause
    csrr s3, mtval
    csrr t6, mepc
    addi t6, t6, 4
    csrw mepc, t6
    mret
8:
    .option norvc
"""


def to_s_mode() -> str:
    """mret to S-mode at 1f (MPP = S)."""
    return """
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, 1f
    csrw mepc, t0
    mret
1:
"""


def napot(base: int, size: int) -> int:
    return (base >> 2) | ((size >> 3) - 1)


def test_s_mode_without_any_entry_faults():
    s = run_asm(
        HANDLER + to_s_mode().replace("mret\n1:", "mret\n.balign 4\n1:"),
        max_insns=200,
        expect_end=False,
    )
    assert s.x(18) == 1  # instruction access fault at the S-mode target
    assert 0x8000_0000 <= s.x(19) < 0x8000_1000  # the S-mode target address


def test_napot_region_grants_s_mode_what_its_bits_say():
    data = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(0x8000_0000, 0x40_0000)}    # code: 4 MiB, RWX
        csrw pmpaddr0, t0
        li t0, {napot(data, 0x1000)}              # data page: read-only
        csrw pmpaddr1, t0
        li t0, (0x1f) | (0x19 << 8)               # NAPOT RWX, NAPOT R
        csrw pmpcfg0, t0
        li s4, {data}
    """
        + to_s_mode()
        + """
        ld a0, 0(s4)          # allowed
        sd a0, 0(s4)          # store access fault
        ecall                 # back to M (cause 9)
    """
    )
    assert s.x(18) == 9
    assert s.x(19) == 0


def test_store_fault_on_read_only_region():
    data = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(0x8000_0000, 0x40_0000)}
        csrw pmpaddr0, t0
        li t0, {napot(data, 0x1000)}
        csrw pmpaddr1, t0
        li t0, (0x1f) | (0x19 << 8)
        csrw pmpcfg0, t0
        li s4, {data + 8}
    """
        + to_s_mode()
        + """
        sd a0, 0(s4)
        mv s5, s2             # the cause the store took
        mv s6, s3
        ecall
    """
    )
    assert s.x(21) == 7 and s.x(22) == data + 8


def test_tor_and_na4_and_lowest_entry_wins():
    base = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {base >> 2}            # entry 0: TOR [0, base): RWX
        csrw pmpaddr0, t0
        li t0, {(base + 8) >> 2}      # entry 1: NA4 at base + 8, no permission
        csrw pmpaddr1, t0
        li t0, {(base + 0x1000) >> 2}  # entry 2: TOR [base+8.., base + 0x1000): RW
        csrw pmpaddr2, t0
        li t0, 0x0f | (0x10 << 8) | (0x0b << 16)
        csrw pmpcfg0, t0
        li s4, {base}
    """
        + to_s_mode()
        + """
        ld a0, 16(s4)          # entry 2 (TOR from pmpaddr1): allowed
        mv s7, s2
        lw a1, 8(s4)           # entry 1 (NA4, no R) matches first: fault
        mv s8, s2
        mv s9, s3
        ecall
    """
    )
    assert s.x(23) == 0  # no fault for the first load
    assert s.x(24) == 5 and s.x(25) == base + 8


def test_aligned_access_matching_an_entry_partly_fails():
    base = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(0x8000_0000, 0x40_0000)}
        csrw pmpaddr0, t0
        li t0, {base >> 2}                    # NA4: 4 bytes RW at base ...
        csrw pmpaddr1, t0
        li t0, {(base + 4) >> 2}              # ... NA4: 4 bytes RW at base + 4
        csrw pmpaddr2, t0
        li t0, 0x1f | (0x13 << 8) | (0x13 << 16)
        csrw pmpcfg0, t0
        li s4, {base}
    """
        + to_s_mode()
        + """
        ld a0, 0(s4)          # entry 1 matches 4 of the 8 bytes: the access fails
        mv s5, s2
        mv s6, s3
        lw a1, 4(s4)          # wholly inside entry 2: fine
        mv s7, s2
        ecall
    """
    )
    assert s.x(21) == 5 and s.x(22) == base
    assert s.x(23) == 5  # unchanged: no second fault


def test_misaligned_access_is_checked_piece_by_piece():
    # Misaligned accesses may be split, each piece checked on its own (3.7.1, the note on
    # misaligned accesses); QEMU 7.2 splits too, so a load spanning two entries works.
    base = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(0x8000_0000, 0x40_0000)}
        csrw pmpaddr0, t0
        li t0, {napot(base, 8)}
        csrw pmpaddr1, t0
        li t0, {napot(base + 8, 8)}
        csrw pmpaddr2, t0
        li t0, 0x1f | (0x1b << 8) | (0x1b << 16)
        csrw pmpcfg0, t0
        li s4, {base + 4}
    """
        + to_s_mode()
        + """
        ld a0, 0(s4)
        mv s5, s2
        ecall
    """
    )
    assert s.x(21) == 0
    assert s.x(18) == 9


def test_locked_entry_binds_m_mode_and_cannot_be_changed():
    area = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(area, 0x1000)}
        csrw pmpaddr0, t0
        li t0, 0x80 | 0x19           # locked, NAPOT, read-only
        csrw pmpcfg0, t0
        li s4, {area}
        sd zero, 0(s4)               # M-mode store: faults (the lock applies to M)
        mv s5, s2
        li t0, 0x1f
        csrw pmpcfg0, t0             # ignored: locked
        csrr s6, pmpcfg0
        li t0, 0
        csrw pmpaddr0, t0            # ignored: locked
        csrr s7, pmpaddr0
    """
    )
    assert s.x(21) == 7
    assert s.x(22) & 0xFF == 0x99
    assert s.x(23) == napot(area, 0x1000)


def test_unlocked_entries_do_not_bind_m_mode():
    area = 0x8040_0000
    s = run_asm(
        HANDLER
        + f"""
        li t0, {napot(area, 0x1000)}
        csrw pmpaddr0, t0
        li t0, 0x18                  # NAPOT, no permissions, not locked
        csrw pmpcfg0, t0
        li s4, {area}
        li a0, 0x1234
        sd a0, 0(s4)
        ld a1, 0(s4)
    """
    )
    assert s.x(18) == 0 and s.x(11) == 0x1234


def test_napot_ranges_for_every_count_of_trailing_ones():
    """NAPOT: pmpaddr's trailing ones k give a 2^(k+3)-byte region at its other bits (3.7.1,
    table 3.11); k = 54, the whole field ones, covers all of the physical address space."""
    import numpy as np

    from rvh.cpu import layout as L
    from rvh.cpu.mmu import pmp_range

    state = np.zeros(L.STATE_SIZE, dtype=np.int64)
    state[L.CSR_BASE + 0x3A0] = 3 << 3  # pmpcfg0: entry 0 NAPOT
    field = (1 << 54) - 1
    for ones in range(55):
        for base in (0, 0x2000_0000, 0x3F_FFFF_FFFF_FFF0):
            address = ((base << ones) | ((1 << ones) - 1)) & field
            if ones < 54:
                address &= ~(1 << ones)  # the bit above the ones is clear
            state[L.CSR_BASE + 0x3B0] = address  # pmpaddr0
            size = 1 << (ones + 3)
            start = (address & ~((1 << ones) - 1)) << 2
            assert pmp_range(state, 0) == (start, start + size), (ones, hex(address))

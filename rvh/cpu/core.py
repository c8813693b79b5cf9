"""The hart's run loop: ``run(state, machine, tables, memory, page_flags, tlb, decode_cache,
budget, trace) -> exit reason``.

Shape (after TinyEMU's interpreter): fetch through a cached page translation, look the
instruction up in the decode cache (decoding it on a miss), dispatch on its id, repeat.  Nothing
is checked per instruction that cannot have changed: interrupts and timers are looked at only
when the instruction count reaches ``limit``, the next moment something can happen (a timer
deadline, the end of the budget); instructions that can change interrupt state (CSR writes,
xRET, wfi, stores to devices) pull ``limit`` down to now.

Hot instructions are executed inline: ALU, M, branches, jumps, and loads/stores whose page is in
the TLB (one tag compare covers translation, permission and alignment).  Everything rarer is one
function per family: ``execute_csr`` (Zicsr), ``execute_privileged`` (ecall, ebreak, xRET, wfi,
the fences of the MMU), ``execute_atomic``, ``execute_hypervisor_memory`` and the slow memory
paths.  Each returns OK or an exception cause; every trap, whether an interrupt, a fetch fault or
an instruction's exception, then goes through ``deliver_trap``.

``trace`` is None or an int64 array of commit records; numba compiles a separate version for
each, and in the None version every tracing branch is removed at compile time.
"""

import numba as nb
import numpy as np

from rvh.cpu import arith
from rvh.cpu.borrow import borrowed
from rvh.cpu.csr import (
    clear_csr_reads,
    csr_access_fault,
    csr_read,
    csr_write,
    plain_write_mask,
    remember_csr_read,
)
from rvh.cpu.debug import breakpoint_at, breakpoint_on_page
from rvh.cpu.decode import decode
from rvh.cpu.exits import Exit
from rvh.cpu.extensions import has_hypervisor
from rvh.cpu.fast import fast_loop
from rvh.cpu.fpu import execute_float
from rvh.cpu.interrupts import (
    any_pending_enabled,
    next_deadline,
    select_interrupt,
)
from rvh.cpu.layout import (
    BANK_IS_VS,
    CSR_HGATP,
    CSR_HSTATUS,
    CSR_MSTATUS,
    CSR_VSSTATUS,
    CYCLE,
    DATA_CTX,
    DC_BITS,
    DC_IMM,
    DC_LENGTH,
    DC_OP,
    DC_RD,
    DC_RS1,
    DC_RS2,
    DC_SHIFT,
    DC_TAG,
    DECODE_CACHE_MASK,
    FETCH_CTX,
    GENERAL_PATH,
    INSTRET,
    M_BREAKPOINTS,
    M_CODE_WRITES,
    M_FIRMWARE_TRAPS,
    MMIO_DONE,
    MMIO_FAULT,
    MMIO_STATE,
    PAGE_FLAG_CODE,
    PAGE_FLAG_TRANSLATED,
    PAGE_FLAG_UNTRACKED,
    PAGE_MASK,
    PC,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    RESERVATION,
    RESERVATION_VALUE,
    TIME_NS,
    TLB_ADDEND,
    TLB_EXEC_FLIP,
    TLB_SET_MASK,
    TLB_TAG_EXEC,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
    TRACE_CSR,
    TRACE_CSR_VALUE,
    TRACE_POS,
    TRAP_CAUSE,
    TRAP_TINST,
    TRAP_TVAL,
    TRIGGER_ARMED_EXECUTE,
    TRIGGER_ARMED_LOAD,
    TRIGGER_ARMED_STORE,
    TRIGGERS_ARMED,
    VIRT,
    WFI,
    X_SINK,
)
from rvh.cpu.memory import (
    WATCH_HIT,
    after_ram_store,
    amo_address,
    amo_compute,
    fault_at,
    load_slow,
    read_host,
    store_slow,
    write_host,
)
from rvh.cpu.mmu import (
    ACCESS_EXECUTE,
    ACCESS_READ,
    ACCESS_READ_EXECUTABLE,
    ASID_MAX,
    NEED_EXIT,
    OK,
    VMID_MAX,
    WATCH_STOP,
    execute_sfence_vma,
    fence_address_space,
    forget_g_leaf,
    full_context,
    host_offset,
    tlb_lookup,
    tlb_slot,
)
from rvh.cpu.tables import T_OP_MATCH
from rvh.cpu.trace import F_TRACE_RD, INTERRUPT_RECORD, TRACE_FIELDS, record, record_event
from rvh.cpu.trap import (
    INTERRUPT_FLAG,
    TARGET_M,
    charge_level,
    mret,
    sret,
    take_trap,
    trap_target,
)
from rvh.cpu.triggers import data_trigger_fires, execute_trigger_fires, trigger_breakpoint
from rvh.isa.causes import Exception_
from rvh.isa.csrs import CsrNumber
from rvh.isa.fields import (
    HGATP_VMID_MASK,
    HGATP_VMID_SHIFT,
    HSTATUS_HU_MASK,
    HSTATUS_SPVP_MASK,
    HSTATUS_VTSR_MASK,
    HSTATUS_VTW_MASK,
    MSTATUS_SUM_MASK,
    MSTATUS_TSR_MASK,
    MSTATUS_TVM_MASK,
    MSTATUS_TW_MASK,
)
from rvh.isa.instructions import Op
from rvh.tier.dispatch import queue_hot, run_blocks
from rvh.tier.layout import (
    COUNT_MASK,
    J_COUNTS,
    J_EPOCH,
    J_QUEUE_LEN,
    J_TABLE,
    J_THRESHOLD,
    JT_HOST,
    JT_PC,
    JT_SHIFT,
    TABLE_MASK,
)

# deliver_trap's "the built-in firmware handles this trap": odd, so never a handler address
FIRMWARE_TRAP = -1

# execute_privileged's status for a wfi that must sleep, beside OK / NEED_EXIT / WATCH_HIT /
# exception causes
WFI_SLEEP = -4

# fast-path keys: page bits plus the low bits that must be zero for an aligned access
KEY_B = PAGE_MASK
KEY_H = PAGE_MASK | 1
KEY_W = PAGE_MASK | 3
KEY_D = PAGE_MASK | 7


@nb.njit(cache=True)
def fetch_bits(state, machine, memory, tlb, pc, host):
    """The instruction at pc (host offset ``host`` for its first halfword).  Returns
    (bits, status); a 32-bit instruction may straddle a page, and its second half may fault."""
    low = np.int64(memory[host]) | (np.int64(memory[host + 1]) << 8)
    if low & 3 != 3:
        return low, np.int64(OK)
    if (pc & 0xFFF) != 0xFFE:
        high = np.int64(memory[host + 2]) | (np.int64(memory[host + 3]) << 8)
        return low | (high << 16), np.int64(OK)
    paddr, status = tlb_lookup(
        state, machine, memory, tlb, pc + 2, 2, ACCESS_EXECUTE, state[FETCH_CTX]
    )
    if status != OK:
        return np.int64(0), status
    host2 = host_offset(machine, paddr, 2)
    if host2 < 0:
        fault_at(state, pc + 2, state[FETCH_CTX])
        return np.int64(0), np.int64(Exception_.INSTRUCTION_ACCESS_FAULT)
    high = np.int64(memory[host2]) | (np.int64(memory[host2 + 1]) << 8)
    return low | (high << 16), np.int64(OK)


@nb.njit(cache=True)
def translate_fetch_page(state, machine, memory, tlb, pc):
    """Translate pc for instruction fetch.  Returns (host offset of pc, status, fetch page,
    fetch addend): while pc stays in the fetch page its host offset is pc + addend; the page
    is -1 when PMP covers only part of it, so that every fetch there translates again."""
    ctx = state[FETCH_CTX]
    paddr, status = tlb_lookup(state, machine, memory, tlb, pc, 2, ACCESS_EXECUTE, ctx)
    if status == OK:
        host = host_offset(machine, paddr, 2)
        if host < 0:
            fault_at(state, pc, ctx)
            status = np.int64(Exception_.INSTRUCTION_ACCESS_FAULT)
    if status != OK:
        return np.int64(0), status, np.int64(-1), np.int64(0)
    entry = ((pc >> 12) & TLB_SET_MASK) ^ TLB_EXEC_FLIP
    if tlb[tlb_slot(ctx, entry) + TLB_TAG_EXEC] == (pc & PAGE_MASK):
        return host, np.int64(OK), pc & PAGE_MASK, host - pc
    return host, np.int64(OK), np.int64(-1), np.int64(0)


@nb.njit(cache=True)
def decode_into_cache(state, machine, tables, memory, page_flags, tlb, decode_cache, pc, host):
    """Fetch and decode the instruction at pc (host offset ``host``) into its decode-cache
    entry, and flag its page(s) as code.  Returns OK or the fetch fault's cause."""
    bits, status = fetch_bits(state, machine, memory, tlb, pc, host)
    if status != OK:
        return status
    d_op, d_rd, d_rs1, d_rs2, d_imm, d_len = decode(bits, tables)
    base = ((host >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
    evicted = decode_cache[base + DC_TAG] >> 12
    if evicted >= 0 and page_flags[evicted] & PAGE_FLAG_TRANSLATED:
        # another instruction leaves the cache from a page with translated blocks: a store
        # over it would no longer be seen, so from now on every store to that page is
        # reported to the tier (memory.store_over_code), and the blocks stay
        page_flags[evicted] |= PAGE_FLAG_UNTRACKED
    decode_cache[base + DC_OP] = d_op
    decode_cache[base + DC_RD] = d_rd
    decode_cache[base + DC_RS1] = d_rs1
    decode_cache[base + DC_RS2] = d_rs2
    decode_cache[base + DC_IMM] = d_imm
    decode_cache[base + DC_LENGTH] = d_len
    decode_cache[base + DC_BITS] = bits
    # an instruction straddling a page depends on two translations: never cache it
    straddles = d_len == 4 and (pc & 0xFFF) == 0xFFE
    decode_cache[base + DC_TAG] = -2 if straddles else host
    page_flags[host >> 12] |= PAGE_FLAG_CODE
    page_flags[(host + d_len - 1) >> 12] |= PAGE_FLAG_CODE
    return np.int64(OK)


@nb.njit(cache=True)
def deliver_trap(state, machine, trace, cause, is_interrupt, pc, bits, n):
    """Take the trap ``cause`` at pc: log it, then enter its handler (``trap.take_trap``).

    Returns the handler's address, or FIRMWARE_TRAP when the trap goes to M-mode and the
    emulator's built-in firmware stands in for M-mode (--sbi): the hart is left as it was and
    the kernel exits with Exit.FIRMWARE and the cause in TRAP_CAUSE.  ``bits`` is the
    instruction for the log (0 when it was never fetched); ``n`` is the kernel call's count of
    instructions so far, the faulting one included."""
    if machine[M_FIRMWARE_TRAPS] and trap_target(state, machine, cause, is_interrupt) == TARGET_M:
        state[TRAP_CAUSE] = (cause | INTERRUPT_FLAG) if is_interrupt else cause
        return np.int64(FIRMWARE_TRAP)
    if trace is not None:
        mode = state[PRIV] | (state[VIRT] << 2)
        if is_interrupt:
            record_event(trace, state, mode, pc, bits, INTERRUPT_RECORD - cause, np.int64(0))
        else:
            record_event(trace, state, mode, pc, bits, -2 - cause, state[TRAP_TVAL])
    # the level being left gets what it retired: all but a faulting instruction
    charge_level(state, state[INSTRET] + n - (0 if is_interrupt else 1))
    return take_trap(state, machine, cause, is_interrupt, state[TRAP_TVAL], pc)


@nb.njit(cache=True)
def execute_atomic(
    state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, bits, n
):
    """LR, SC and AMOs (A chapter).  Returns (status, loaded value for rd)."""
    x = state
    ctx = state[DATA_CTX]
    size = 4 if op <= Op.AMOMAXU_W else 8
    address = x[rs1]
    if state[TRIGGERS_ARMED] & (TRIGGER_ARMED_LOAD | TRIGGER_ARMED_STORE):
        # an LR loads, an SC stores, an AMO does both (rvh/cpu/triggers.py)
        if op == Op.LR_W or op == Op.LR_D:
            accesses = np.int64(TRIGGER_ARMED_LOAD)
        elif op == Op.SC_W or op == Op.SC_D:
            accesses = np.int64(TRIGGER_ARMED_STORE)
        else:
            accesses = np.int64(TRIGGER_ARMED_LOAD | TRIGGER_ARMED_STORE)
        if data_trigger_fires(state, address, size, accesses):
            return trigger_breakpoint(state, address, state[VIRT] != 0), np.int64(0)
    if op == Op.LR_W or op == Op.LR_D:
        host, paddr, status = amo_address(state, machine, memory, tlb, address, size, ctx, True)
        if status != OK:
            return status, np.int64(0)
        value = read_host(memory, host, size)
        value = arith.sext32(value) if size == 4 else value
        state[RESERVATION] = paddr
        state[RESERVATION_VALUE] = value
        return np.int64(OK), value
    host, paddr, status = amo_address(state, machine, memory, tlb, address, size, ctx, False)
    if status != OK:
        return status, np.int64(0)
    if op == Op.SC_W or op == Op.SC_D:
        # the SC pairs with its LR when the address is the reserved one and memory still holds
        # what the LR read, compared at the SC's width: where the A chapter leaves the choice
        # (an SC of the other width, the hart's own stores in between) this is QEMU 7.2's
        # compare-and-swap; an SC that stores reports success (QEMU 7.2 reports failure for an
        # sc.w after an lr.d it stored: the deviation sc-word-after-lr-double)
        current = read_host(memory, host, size)
        expected = state[RESERVATION_VALUE]
        if size == 4:
            # an sc.w after an lr.d compares the low words only, as QEMU's 32-bit cmpxchg does
            current = arith.sext32(current)
            expected = arith.sext32(expected)
        reserved = state[RESERVATION] == paddr and current == expected
        state[RESERVATION] = -1
        if not reserved:
            return np.int64(OK), np.int64(1)
        write_host(memory, host, size, x[rs2])
        return after_ram_store(machine, page_flags, decode_cache, host, size), np.int64(0)
    old = read_host(memory, host, size)
    if size == 4:
        old = arith.sext32(old)
    new = amo_compute(op, old, x[rs2], size)
    write_host(memory, host, size, new)
    return after_ram_store(machine, page_flags, decode_cache, host, size), old


@nb.njit(cache=True)
def execute_csr(state, machine, tables, tlb, op, rd, rs1, csr_number, bits, n):
    """CSRRW/CSRRS/CSRRC and their immediate forms (Zicsr 9.1).  Returns OK or a cause.

    ``csr_access_fault`` alone decides whether the access is legal, illegal or virtual
    (8.6.1), and with V=1 names the register it really goes to (sstatus -> vsstatus ...)."""
    x = state
    immediate = op == Op.CSRRWI or op == Op.CSRRSI or op == Op.CSRRCI
    source = rs1 if immediate else x[rs1]
    swaps = op == Op.CSRRW or op == Op.CSRRWI
    writes = swaps or rs1 != 0  # csrrs/csrrc with x0 or uimm 0 do not write
    reads = not (swaps and rd == X_SINK)  # csrrw to x0 does not read
    status, number = csr_access_fault(state, machine, tables, csr_number, writes)
    if status != OK:
        state[TRAP_TVAL] = bits
        return status
    old = np.int64(0)
    if reads:
        old = csr_read(state, machine, tables, number, n)
        if not writes:
            remember_csr_read(state, tables, csr_number, number)
    if writes:
        # the fast loop's own writes (csr.fast_csr_write) change no CSR's legality: the reads
        # it remembered stay, and it may do the next write of this CSR itself
        fast_write = plain_write_mask(number) != 0 or number == CsrNumber.SSTATUS
        if not fast_write:
            clear_csr_reads(state)
        if swaps:
            new = source
        elif op == Op.CSRRS or op == Op.CSRRSI:
            new = old | source
        else:
            new = old & ~source
        csr_write(state, machine, tables, tlb, number, new, n)
        if fast_write:
            remember_csr_read(state, tables, csr_number, number)
        state[TRACE_CSR] = number  # for the commit log (rare: CSR writes only)
        state[TRACE_CSR_VALUE] = csr_read(state, machine, tables, number, n)
    x[rd] = old
    return np.int64(OK)


@nb.njit(cache=True)
def execute_privileged(state, machine, tlb, op, rs1, rs2, bits, n, npc):
    """ECALL, EBREAK, xRET, WFI, SFENCE.VMA and the HFENCEs.  Returns (status, next pc):
    ``npc`` unless an xRET jumps.

    Privilege checks follow 8.6.1: an instruction HS-mode could execute raises a virtual
    instruction exception in VS/VU-mode when the spec says so (hstatus.VTSR/VTW/VTVM, or VU
    executing a supervisor instruction); one HS-mode could not execute is illegal."""
    x = state
    priv = state[PRIV]
    virt = state[VIRT]
    mstatus = state[CSR_MSTATUS]
    hstatus = state[CSR_HSTATUS]
    illegal = np.int64(Exception_.ILLEGAL_INSTRUCTION)
    virtual = np.int64(Exception_.VIRTUAL_INSTRUCTION)
    if op == Op.ECALL:
        state[TRAP_TVAL] = 0
        if priv == PRIV_U:
            return np.int64(Exception_.ECALL_FROM_U), npc
        if priv == PRIV_S:
            if virt:
                return np.int64(Exception_.ECALL_FROM_VS), npc
            return np.int64(Exception_.ECALL_FROM_S), npc
        return np.int64(Exception_.ECALL_FROM_M), npc
    if op == Op.EBREAK:
        state[TRAP_TVAL] = 0  # QEMU 7.2 leaves tval 0 for ebreak (allowed: 3.1.16)
        return np.int64(Exception_.BREAKPOINT), npc
    state[TRAP_TVAL] = bits  # illegal and virtual instruction exceptions report the bits
    if op == Op.MRET:
        if priv != PRIV_M:
            return illegal, npc
        charge_level(state, state[INSTRET] + n)  # the xRET retires in the level it leaves
        return np.int64(OK), mret(state, machine)
    if op == Op.SRET:
        if virt:
            if priv == PRIV_U or (hstatus & HSTATUS_VTSR_MASK):
                return virtual, npc
        elif priv == PRIV_U or (priv == PRIV_S and (mstatus & MSTATUS_TSR_MASK)):
            return illegal, npc
        charge_level(state, state[INSTRET] + n)
        return np.int64(OK), sret(state, machine)
    if op == Op.WFI:
        if priv != PRIV_M and (mstatus & MSTATUS_TW_MASK):
            return illegal, npc
        if virt:
            if priv == PRIV_U or (hstatus & HSTATUS_VTW_MASK):
                return virtual, npc
        elif priv == PRIV_U:
            return illegal, npc
        if any_pending_enabled(state, machine, state[TIME_NS] + n):
            return np.int64(OK), npc
        return np.int64(WFI_SLEEP), npc
    if op == Op.SFENCE_VMA:
        return execute_sfence_vma(state, tlb, rs1, rs2), npc
    if has_hypervisor(machine) and (op == Op.HFENCE_VVMA or op == Op.HFENCE_GVMA):
        if virt:
            return virtual, npc
        if priv == PRIV_U:
            return illegal, npc
        if op == Op.HFENCE_VVMA:
            vmid = (state[CSR_HGATP] & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT
            fence_address_space(
                state, tlb, BANK_IS_VS, x[rs1], rs1 != 0, x[rs2] & ASID_MAX, rs2 != 0, vmid, True
            )
        else:
            if priv == PRIV_S and (mstatus & MSTATUS_TVM_MASK):
                return illegal, npc
            # the TLB is indexed by guest virtual address: a guest-physical fence drops the
            # whole VMID (or every VMID), which the spec allows, and the G-stage leaf the
            # walk remembers
            forget_g_leaf(state)
            fence_address_space(
                state,
                tlb,
                BANK_IS_VS,
                np.int64(0),
                False,
                np.int64(0),
                False,
                x[rs2] & VMID_MAX,
                rs2 != 0,
            )
        return np.int64(OK), npc
    # hypervisor instructions without the H extension, and ILLEGAL
    return illegal, npc


@nb.njit(cache=True)
def execute_hypervisor_memory(
    state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, n
):
    """HLV, HLVX and HSV (8.3.4): loads and stores as VS or VU (hstatus.SPVP) would do them,
    through vsatp and hgatp, from M, HS, or U with hstatus.HU.  Returns (status, value)."""
    x = state
    priv = state[PRIV]
    if state[VIRT]:
        return np.int64(Exception_.VIRTUAL_INSTRUCTION), np.int64(0)
    if priv == PRIV_U and (state[CSR_HSTATUS] & HSTATUS_HU_MASK) == 0:
        return np.int64(Exception_.ILLEGAL_INSTRUCTION), np.int64(0)
    guest_priv = PRIV_S if state[CSR_HSTATUS] & HSTATUS_SPVP_MASK else PRIV_U
    sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM_MASK) != 0
    ctx = full_context(state, guest_priv, 1, sum_bit)
    address = x[rs1]
    now = state[TIME_NS] + n
    if op == Op.HSV_B or op == Op.HSV_H or op == Op.HSV_W or op == Op.HSV_D:
        size = 1 if op == Op.HSV_B else (2 if op == Op.HSV_H else (4 if op == Op.HSV_W else 8))
        status = store_slow(
            state, machine, memory, page_flags, tlb, decode_cache, address, size, x[rs2], ctx, now
        )
        return status, np.int64(0)
    if op == Op.HLV_B or op == Op.HLV_BU:
        size = 1
    elif op == Op.HLV_H or op == Op.HLV_HU or op == Op.HLVX_HU:
        size = 2
    elif op == Op.HLV_W or op == Op.HLV_WU or op == Op.HLVX_WU:
        size = 4
    else:
        size = 8
    access = ACCESS_READ_EXECUTABLE if (op == Op.HLVX_HU or op == Op.HLVX_WU) else ACCESS_READ
    value, status = load_slow(state, machine, memory, tlb, address, size, ctx, now, access)
    if op == Op.HLV_B:
        value = np.int64(np.int8(value))
    elif op == Op.HLV_H:
        value = np.int64(np.int16(value))
    elif op == Op.HLV_W:
        value = arith.sext32(value)
    return status, value


@nb.njit(cache=True)
def transformed_instruction(tables, op, rd, rs2, bits, length, offset):
    """htinst/mtinst for a guest-page fault of an explicit access (8.6.3): the instruction with
    its immediate zeroed and the address offset in the rs1 field; a compressed instruction is
    given as its 32-bit form with bit 1 cleared."""
    if length == 2:
        match = tables[tables[T_OP_MATCH] + op]
        opcode = match & 0x707F
        if opcode & 0x7F == 0x03 or opcode & 0x7F == 0x07:  # loads, FP loads
            word = opcode | ((rd & 31) << 7)
        else:  # stores
            word = opcode | ((rs2 & 31) << 20)
        return (word & ~np.int64(2)) | ((offset & 31) << 15)
    opcode = bits & 0x7F
    if opcode == 0x03 or opcode == 0x07:  # loads: clear imm[11:0]
        word = bits & ~(np.int64(0xFFF) << 20)
    elif opcode == 0x23 or opcode == 0x27:  # stores: clear imm[11:5] and imm[4:0]
        word = bits & ~((np.int64(0x7F) << 25) | (np.int64(0x1F) << 7))
    else:  # AMOs, HLV/HSV: no immediate
        word = bits
    return (word & ~(np.int64(31) << 15)) | ((offset & 31) << 15)


@nb.njit(cache=True, nogil=True)
def run(state, machine, tables, memory, page_flags, tlb, decode_cache, budget, trace, jit=None):
    """Execute up to ``budget`` instructions of one hart; returns an :class:`Exit` value.

    ``jit`` is None, or the translating tier's array (rvh/tier): then hot blocks run as
    compiled code, and the commit log (``trace``) must be None.

    The caller holds every array until the call returns, so the kernel works on views numba
    does not count references to: otherwise each call below the loop (``fast_loop`` takes ten
    arrays) costs a locked increment and decrement per array (rvh/cpu/borrow.py)."""
    return run_views(
        borrowed(state),
        borrowed(machine),
        borrowed(tables),
        borrowed(memory),
        borrowed(page_flags),
        borrowed(tlb),
        borrowed(decode_cache),
        budget,
        borrowed(trace),
        borrowed(jit),
    )


@nb.njit(cache=True, nogil=True)
def run_views(state, machine, tables, memory, page_flags, tlb, decode_cache, budget, trace, jit):
    """``run`` on borrowed views of its arrays."""
    x = state  # x0..x31 are state[0..31]
    mem_h = memory.view(np.int16)
    mem_hu = memory.view(np.uint16)
    mem_w = memory.view(np.int32)
    mem_wu = memory.view(np.uint32)
    mem_d = memory.view(np.int64)
    pc = state[PC]
    n = np.int64(0)
    limit = np.int64(0)
    if state[MMIO_STATE] == MMIO_DONE or state[MMIO_STATE] == MMIO_FAULT:
        limit = np.int64(1)  # replay the device access before anything can interrupt it
    fetch_page = np.int64(-1)
    fetch_addend = np.int64(0)
    dctx = state[DATA_CTX]
    exit_reason = np.int64(Exit.BUDGET)
    clear_csr_reads(state)  # Python may have written CSRs since the last call
    while True:
        if n >= limit:
            # ---- events: budget, interrupts, next timer deadline ----
            if n >= budget:
                break
            now = state[TIME_NS] + n
            cause = select_interrupt(state, machine, now)
            if cause >= 0:
                target = deliver_trap(state, machine, trace, cause, True, pc, np.int64(0), n)
                if target == FIRMWARE_TRAP:
                    exit_reason = np.int64(Exit.FIRMWARE)
                    break
                pc = target
                fetch_page = np.int64(-1)
                state[WFI] = 0
            limit = min(budget, n + next_deadline(state, machine, now))
        if fetch_page != -1:
            # the fetch page is a copy of its TLB entry, and a fill since (a load's page in the
            # same set) may have evicted it: drop the copy as the TLB dropped the entry, so the
            # next fetch misses as it would after a kernel call boundary (a save point)
            fetch_entry = ((fetch_page >> 12) & TLB_SET_MASK) ^ TLB_EXEC_FLIP
            if tlb[tlb_slot(state[FETCH_CTX], fetch_entry) + TLB_TAG_EXEC] != fetch_page:
                fetch_page = np.int64(-1)
        if trace is None:
            if jit is not None:
                # run_blocks is called only when there is a block at pc or stale code to drop:
                # a call costs numba's reference counting of its seven arrays, and this is
                # reached after every instruction of the general path
                host = pc + fetch_addend
                slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
                if jit[J_EPOCH] != machine[M_CODE_WRITES] or (
                    (pc & PAGE_MASK) == fetch_page
                    and jit[slot + JT_HOST] == host
                    and jit[slot + JT_PC] == pc
                ):
                    pc, n = run_blocks(
                        x,
                        memory,
                        page_flags,
                        tlb,
                        decode_cache,
                        machine,
                        jit,
                        pc,
                        n,
                        limit,
                        dctx,
                        fetch_page,
                        fetch_addend,
                    )
                elif (pc & PAGE_MASK) == fetch_page:
                    # an entry where no block is (yet): counted as run_blocks counts it
                    counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
                    count = jit[counter] + 1
                    jit[counter] = count
                    if count == jit[J_THRESHOLD]:
                        queue_hot(jit, counter, host, pc)
                if jit[J_QUEUE_LEN] != 0 and n > 0:
                    budget = n  # hot blocks wait: return so that Python compiles them
                    limit = n
                    continue
                if n >= limit:
                    continue
            before = n
            pc, n, fetch_page, fetch_addend = fast_loop(
                x,
                memory,
                mem_h,
                mem_w,
                mem_d,
                page_flags,
                tlb,
                decode_cache,
                pc,
                n,
                limit,
                dctx,
                fetch_page,
                fetch_addend,
                machine,
                jit,
            )
            dctx = state[DATA_CTX]  # the fast loop's sstatus writes may change SUM
            if n >= limit:
                continue
            if jit is not None and n != before:
                # with the tier a block may start at pc: back to the top for it.  Else the
                # entry is counted here and the general path runs the instruction the fast
                # loop stopped at: calling the fast loop again would only stop there at once,
                # and a call costs numba's passing of its ten arrays (about 70 words on the
                # stack; Linux's boot made 3 million such calls)
                host = pc + fetch_addend
                slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
                if (
                    (pc & PAGE_MASK) != fetch_page
                    or jit[J_EPOCH] != machine[M_CODE_WRITES]
                    or jit[J_QUEUE_LEN] != 0
                ):
                    continue  # (the top handles these as after any fast loop)
                if jit[slot + JT_HOST] == host and jit[slot + JT_PC] == pc:
                    continue
                counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
                count = jit[counter] + 1
                jit[counter] = count
                if count == jit[J_THRESHOLD] and queue_hot(jit, counter, host, pc):
                    budget = n  # hot blocks wait: return so that Python compiles them
                    limit = n
                    continue
        # ---- the general path: one instruction, whatever it is ----
        if machine[M_BREAKPOINTS] != 0 and breakpoint_at(machine, pc):
            exit_reason = np.int64(Exit.BREAKPOINT)  # before executing it, as gdb expects
            break
        n += 1
        state[GENERAL_PATH] += 1
        if state[TRIGGERS_ARMED] & TRIGGER_ARMED_EXECUTE and execute_trigger_fires(state, pc):
            # an execute trigger: a breakpoint exception before the instruction, with the
            # highest priority of all (privileged spec 3.7, table 3.7); the trigger's page has
            # slow fetch tags, so the fast loop never runs it (rvh/cpu/triggers.py)
            status = trigger_breakpoint(state, pc, state[VIRT] != 0)
            target = deliver_trap(state, machine, trace, status, False, pc, np.int64(0), n)
            if target == FIRMWARE_TRAP:
                n -= 1  # the instruction was not executed
                exit_reason = np.int64(Exit.FIRMWARE)
                break
            pc = target
            fetch_page = np.int64(-1)
            continue
        # ---- fetch through the cached translation of the current page ----
        status = np.int64(OK)
        if (pc & PAGE_MASK) == fetch_page:
            host = pc + fetch_addend
        else:
            dctx = state[DATA_CTX]
            host, status, fetch_page, fetch_addend = translate_fetch_page(
                state, machine, memory, tlb, pc
            )
            if machine[M_BREAKPOINTS] != 0 and breakpoint_on_page(machine, fetch_page):
                fetch_page = np.int64(-1)  # the fast loop must not run past the breakpoint
        slot = (host >> 1) & DECODE_CACHE_MASK
        if status == OK and decode_cache[(slot << DC_SHIFT) + DC_TAG] != host:
            status = decode_into_cache(
                state, machine, tables, memory, page_flags, tlb, decode_cache, pc, host
            )
        if status != OK:
            target = deliver_trap(state, machine, trace, status, False, pc, np.int64(0), n)
            if target == FIRMWARE_TRAP:
                n -= 1  # the instruction was not executed
                exit_reason = np.int64(Exit.FIRMWARE)
                break
            pc = target
            fetch_page = np.int64(-1)
            continue
        base = slot << DC_SHIFT
        # the masks tell LLVM the indices are not negative: no wraparound code on x[...]
        op = decode_cache[base + DC_OP]
        rd = decode_cache[base + DC_RD] & 63
        rs1 = decode_cache[base + DC_RS1] & 31
        rs2 = decode_cache[base + DC_RS2] & 31
        imm = decode_cache[base + DC_IMM]
        npc = pc + decode_cache[base + DC_LENGTH]
        status = np.int64(OK)
        if trace is not None:
            traced_rs1 = x[rs1]
            traced_mode = state[PRIV] | (state[VIRT] << 2)
        # ---- execute ----
        if op == Op.ADDI:
            x[rd] = x[rs1] + imm
        elif op == Op.ADD:
            x[rd] = x[rs1] + x[rs2]
        elif op == Op.LD:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_D):
                x[rd] = mem_d[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]) >> np.uint64(3)]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 8, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = v
        elif op == Op.SD:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_WRITE] == (a & KEY_D):
                h = a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]
                mem_d[np.uint64(h) >> np.uint64(3)] = x[rs2]
                if page_flags[np.uint64(h) >> np.uint64(12)]:
                    status = after_ram_store(machine, page_flags, decode_cache, h, 8)
            else:
                status = store_slow(
                    state,
                    machine,
                    memory,
                    page_flags,
                    tlb,
                    decode_cache,
                    a,
                    8,
                    x[rs2],
                    dctx,
                    state[TIME_NS] + n,
                )
                limit = n
        elif op == Op.LW:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_W):
                x[rd] = mem_w[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]) >> np.uint64(2)]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 4, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = arith.sext32(v)
        elif op == Op.SW:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_WRITE] == (a & KEY_W):
                h = a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]
                mem_w[np.uint64(h) >> np.uint64(2)] = x[rs2]
                if page_flags[np.uint64(h) >> np.uint64(12)]:
                    status = after_ram_store(machine, page_flags, decode_cache, h, 4)
            else:
                status = store_slow(
                    state,
                    machine,
                    memory,
                    page_flags,
                    tlb,
                    decode_cache,
                    a,
                    4,
                    x[rs2],
                    dctx,
                    state[TIME_NS] + n,
                )
                limit = n
        elif op == Op.BEQ:
            if x[rs1] == x[rs2]:
                npc = pc + imm
        elif op == Op.BNE:
            if x[rs1] != x[rs2]:
                npc = pc + imm
        elif op == Op.BLT:
            if x[rs1] < x[rs2]:
                npc = pc + imm
        elif op == Op.BGE:
            if x[rs1] >= x[rs2]:
                npc = pc + imm
        elif op == Op.BLTU:
            if arith.ltu(x[rs1], x[rs2]):
                npc = pc + imm
        elif op == Op.BGEU:
            if not arith.ltu(x[rs1], x[rs2]):
                npc = pc + imm
        elif op == Op.JAL:
            x[rd] = npc
            npc = pc + imm
        elif op == Op.JALR:
            target = (x[rs1] + imm) & ~np.int64(1)
            x[rd] = npc
            npc = target
        elif op == Op.LUI:
            x[rd] = imm
        elif op == Op.AUIPC:
            x[rd] = pc + imm
        elif op == Op.LBU:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_B):
                x[rd] = memory[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND])]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 1, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = v
        elif op == Op.LB:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_B):
                x[rd] = np.int64(
                    np.int8(memory[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND])])
                )
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 1, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = np.int64(np.int8(v))
        elif op == Op.LHU:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_H):
                x[rd] = mem_hu[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]) >> np.uint64(1)]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 2, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = v
        elif op == Op.LH:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_H):
                x[rd] = mem_h[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]) >> np.uint64(1)]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 2, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = np.int64(np.int16(v))
        elif op == Op.LWU:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_READ] == (a & KEY_W):
                x[rd] = mem_wu[np.uint64(a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]) >> np.uint64(2)]
            else:
                v, status = load_slow(
                    state, machine, memory, tlb, a, 4, dctx, state[TIME_NS] + n, ACCESS_READ
                )
                if status == OK:
                    x[rd] = v
        elif op == Op.SB:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_WRITE] == (a & KEY_B):
                h = a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]
                memory[np.uint64(h)] = x[rs2] & 0xFF
                if page_flags[np.uint64(h) >> np.uint64(12)]:
                    status = after_ram_store(machine, page_flags, decode_cache, h, 1)
            else:
                status = store_slow(
                    state,
                    machine,
                    memory,
                    page_flags,
                    tlb,
                    decode_cache,
                    a,
                    1,
                    x[rs2],
                    dctx,
                    state[TIME_NS] + n,
                )
                limit = n
        elif op == Op.SH:
            a = x[rs1] + imm
            e = (a >> 12) & TLB_SET_MASK
            if tlb[tlb_slot(dctx, e) + TLB_TAG_WRITE] == (a & KEY_H):
                h = a + tlb[tlb_slot(dctx, e) + TLB_ADDEND]
                mem_h[np.uint64(h) >> np.uint64(1)] = x[rs2]
                if page_flags[np.uint64(h) >> np.uint64(12)]:
                    status = after_ram_store(machine, page_flags, decode_cache, h, 2)
            else:
                status = store_slow(
                    state,
                    machine,
                    memory,
                    page_flags,
                    tlb,
                    decode_cache,
                    a,
                    2,
                    x[rs2],
                    dctx,
                    state[TIME_NS] + n,
                )
                limit = n
        elif op == Op.SLTI:
            x[rd] = 1 if x[rs1] < imm else 0
        elif op == Op.SLTIU:
            x[rd] = 1 if arith.ltu(x[rs1], imm) else 0
        elif op == Op.XORI:
            x[rd] = x[rs1] ^ imm
        elif op == Op.ORI:
            x[rd] = x[rs1] | imm
        elif op == Op.ANDI:
            x[rd] = x[rs1] & imm
        elif op == Op.SLLI:
            x[rd] = x[rs1] << imm
        elif op == Op.SRLI:
            x[rd] = arith.srl(x[rs1], imm)
        elif op == Op.SRAI:
            x[rd] = x[rs1] >> imm
        elif op == Op.SUB:
            x[rd] = x[rs1] - x[rs2]
        elif op == Op.SLL:
            x[rd] = x[rs1] << (x[rs2] & 63)
        elif op == Op.SLT:
            x[rd] = 1 if x[rs1] < x[rs2] else 0
        elif op == Op.SLTU:
            x[rd] = 1 if arith.ltu(x[rs1], x[rs2]) else 0
        elif op == Op.XOR:
            x[rd] = x[rs1] ^ x[rs2]
        elif op == Op.SRL:
            x[rd] = arith.srl(x[rs1], x[rs2] & 63)
        elif op == Op.SRA:
            x[rd] = x[rs1] >> (x[rs2] & 63)
        elif op == Op.OR:
            x[rd] = x[rs1] | x[rs2]
        elif op == Op.AND:
            x[rd] = x[rs1] & x[rs2]
        elif op == Op.ADDIW:
            x[rd] = arith.sext32(x[rs1] + imm)
        elif op == Op.SLLIW:
            x[rd] = arith.sext32(x[rs1] << imm)
        elif op == Op.SRLIW:
            x[rd] = arith.sext32((x[rs1] & 0xFFFFFFFF) >> imm)
        elif op == Op.SRAIW:
            x[rd] = arith.sext32(x[rs1]) >> imm
        elif op == Op.ADDW:
            x[rd] = arith.sext32(x[rs1] + x[rs2])
        elif op == Op.SUBW:
            x[rd] = arith.sext32(x[rs1] - x[rs2])
        elif op == Op.SLLW:
            x[rd] = arith.sext32(x[rs1] << (x[rs2] & 31))
        elif op == Op.SRLW:
            x[rd] = arith.sext32((x[rs1] & 0xFFFFFFFF) >> (x[rs2] & 31))
        elif op == Op.SRAW:
            x[rd] = arith.sext32(x[rs1]) >> (x[rs2] & 31)
        elif op == Op.MUL:
            x[rd] = x[rs1] * x[rs2]
        elif op == Op.MULH:
            x[rd] = arith.mulh(x[rs1], x[rs2])
        elif op == Op.MULHSU:
            x[rd] = arith.mulhsu(x[rs1], x[rs2])
        elif op == Op.MULHU:
            x[rd] = arith.mulhu(x[rs1], x[rs2])
        elif op == Op.DIV:
            x[rd] = arith.div(x[rs1], x[rs2])
        elif op == Op.DIVU:
            x[rd] = arith.divu(x[rs1], x[rs2])
        elif op == Op.REM:
            x[rd] = arith.rem(x[rs1], x[rs2])
        elif op == Op.REMU:
            x[rd] = arith.remu(x[rs1], x[rs2])
        elif op == Op.MULW:
            x[rd] = arith.sext32(x[rs1] * x[rs2])
        elif op == Op.DIVW:
            x[rd] = arith.divw(x[rs1], x[rs2])
        elif op == Op.DIVUW:
            x[rd] = arith.divuw(x[rs1], x[rs2])
        elif op == Op.REMW:
            x[rd] = arith.remw(x[rs1], x[rs2])
        elif op == Op.REMUW:
            x[rd] = arith.remuw(x[rs1], x[rs2])
        elif op >= Op.LR_W and op <= Op.AMOMAXU_D:
            status, value = execute_atomic(
                state,
                machine,
                memory,
                page_flags,
                tlb,
                decode_cache,
                op,
                rd,
                rs1,
                rs2,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
            )
            if status == OK or status == WATCH_HIT:
                x[rd] = value
        elif op >= Op.HLV_B and op <= Op.HSV_D and has_hypervisor(machine):
            status, value = execute_hypervisor_memory(
                state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, n
            )
            if status == OK or status == WATCH_HIT:
                x[rd] = value
            elif (
                status == Exception_.ILLEGAL_INSTRUCTION or status == Exception_.VIRTUAL_INSTRUCTION
            ):
                state[TRAP_TVAL] = decode_cache[(slot << DC_SHIFT) + DC_BITS]
            limit = n
        elif op >= Op.FLW:
            # F and D; the trace shows an f destination as 64 + n (rvh/cpu/trace.py)
            status, value, writes_x = execute_float(
                state,
                machine,
                memory,
                page_flags,
                tlb,
                decode_cache,
                op,
                rd,
                rs1,
                rs2,
                imm,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
            )
            if status == OK:
                if writes_x:
                    x[rd] = value
                elif op != Op.FSW and op != Op.FSD:
                    rd = F_TRACE_RD + (rd & 31)
                else:
                    rd = np.int64(X_SINK)
            elif status == Exception_.ILLEGAL_INSTRUCTION:
                state[TRAP_TVAL] = decode_cache[(slot << DC_SHIFT) + DC_BITS]
            limit = n
        elif op >= Op.CSRRW and op <= Op.CSRRCI:
            status = execute_csr(
                state,
                machine,
                tables,
                tlb,
                op,
                rd,
                rs1,
                imm,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
            )
            if (op == Op.CSRRW or op == Op.CSRRWI or rs1 != 0) and plain_write_mask(imm) == 0:
                # a write: privilege, translation or interrupts may have changed.  A read
                # (csrrs/csrrc with x0 or uimm 0, Zicsr 9.1) changes nothing, nor does a write
                # of sscratch, sepc... (csr.plain_write_mask; with V=1 they alias registers of
                # the same kind), so the fetch translation and the next event stay as they were
                fetch_page = np.int64(-1)
                limit = n
        elif op == Op.FENCE or op == Op.FENCE_I:
            pass  # the decode cache follows every store, so fence.i has nothing left to do
        else:
            status, npc = execute_privileged(
                state,
                machine,
                tlb,
                op,
                rs1,
                rs2,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
                npc,
            )
            fetch_page = np.int64(-1)
            limit = n
        # ---- retire, trap or leave ----
        if status != OK:
            if status == NEED_EXIT:
                n -= 1  # the instruction replays once Python has done the device access
                exit_reason = np.int64(Exit.MMIO)
                break
            if status == WATCH_STOP:
                n -= 1  # not executed: gdb steps over it (rvh/cpu/debug.py)
                exit_reason = np.int64(Exit.WATCHPOINT)
                break
            if status == WATCH_HIT or status == WFI_SLEEP:
                pc = npc
                if trace is not None:
                    record(trace, state, traced_mode, pc, slot, decode_cache, traced_rs1, rd, x[rd])
                exit_reason = np.int64(Exit.HTIF if status == WATCH_HIT else Exit.WFI)
                if status == WFI_SLEEP:
                    state[WFI] = 1
                break
            # an exception: the instruction does not retire
            if state[TRAP_TINST] < 0:
                # a guest-page fault of an explicit access: htinst gets the transformed
                # instruction, with the faulting address's offset from the access's start
                base = slot << DC_SHIFT
                if op >= Op.LR_W and op <= Op.AMOMAXU_D or op >= Op.HLV_B and op <= Op.HSV_D:
                    start = x[rs1]
                else:
                    start = x[rs1] + imm
                state[TRAP_TINST] = transformed_instruction(
                    tables,
                    op,
                    decode_cache[base + DC_RD],
                    rs2,
                    decode_cache[base + DC_BITS],
                    decode_cache[base + DC_LENGTH],
                    state[TRAP_TVAL] - start,
                )
            target = deliver_trap(
                state,
                machine,
                trace,
                status,
                False,
                pc,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
            )
            if target == FIRMWARE_TRAP:
                n -= 1  # the instruction was not executed
                exit_reason = np.int64(Exit.FIRMWARE)
                break
            pc = target
            fetch_page = np.int64(-1)
            continue
        if trace is not None:
            record(trace, state, traced_mode, pc, slot, decode_cache, traced_rs1, rd, x[rd])
            if state[TRACE_POS] >= trace.shape[0] // TRACE_FIELDS:
                pc = npc
                exit_reason = np.int64(Exit.TRACE_FULL)
                break
        pc = npc
    state[PC] = pc
    state[INSTRET] += n
    state[CYCLE] += n
    state[TIME_NS] += n
    charge_level(state, state[INSTRET])
    return exit_reason

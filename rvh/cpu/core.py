"""The hart's run loop: ``run(state, machine, tables, memory, page_flags, tlb, decode_cache,
budget, trace) -> exit reason``.

Shape (after TinyEMU's interpreter): fetch through a cached page translation, look the
instruction up in the decode cache (decoding it on a miss), dispatch on its id, repeat.  Nothing
is checked per instruction that cannot have changed: interrupts and timers are looked at only
when the instruction count reaches ``limit``, the next moment something can happen (a timer
deadline, the end of the budget); instructions that can change interrupt state (CSR writes,
xRET, wfi, stores to devices) pull ``limit`` down to now.

Hot instructions are executed inline: ALU, M, branches, jumps, and loads/stores whose page is in
the TLB (one tag compare covers translation, permission and alignment).  Everything rarer lives
in ``execute_system`` / ``execute_atomic`` and the slow memory paths.

``trace`` is None or an int64 array of commit records; numba compiles a separate version for
each, and in the None version every tracing branch is removed at compile time.
"""

import numba as nb
import numpy as np

from rvh.cpu import arith
from rvh.cpu.csr import csr_access_fault, csr_read, csr_write, has_hypervisor
from rvh.cpu.decode import decode
from rvh.cpu.exits import Exit
from rvh.cpu.fast import fast_loop
from rvh.cpu.fpu import execute_float
from rvh.cpu.interrupts import (
    any_pending_enabled,
    next_deadline,
    select_interrupt,
)
from rvh.cpu.layout import (
    BANK_IS_HS,
    BANK_IS_VS,
    CSR_BASE,
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
    M_FIRMWARE_TRAPS,
    MMIO_DONE,
    MMIO_FAULT,
    MMIO_STATE,
    PAGE_FLAG_CODE,
    PAGE_MASK,
    PC,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    RESERVATION,
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
    NEED_EXIT,
    OK,
    fence_address_space,
    full_context,
    host_offset,
    tlb_lookup,
    tlb_slot,
)
from rvh.cpu.tables import T_OP_MATCH
from rvh.cpu.trace import F_TRACE_RD, INTERRUPT_RECORD, TRACE_FIELDS, record, record_event
from rvh.cpu.trap import TARGET_M, mret, sret, take_trap, trap_target
from rvh.isa.csrs import (
    HSTATUS_HU,
    HSTATUS_SPVP,
    HSTATUS_VTSR,
    HSTATUS_VTVM,
    HSTATUS_VTW,
    MSTATUS_SUM,
    MSTATUS_TSR,
    MSTATUS_TVM,
    MSTATUS_TW,
)
from rvh.isa.instructions import Op

CSR_MSTATUS = CSR_BASE + 0x300
CSR_HSTATUS = CSR_BASE + 0x600
CSR_HGATP = CSR_BASE + 0x680
CSR_VSSTATUS = CSR_BASE + 0x200

ILLEGAL_INSTRUCTION = 2
VIRTUAL_INSTRUCTION = 22
BREAKPOINT = 3
INSTRUCTION_ACCESS_FAULT = 1

# execute_system's "fall through to the next instruction": odd, so never a pc (pcs are even, and
# upper-half targets such as 0xffffffff80000000 are negative as int64, so no sign test will do)
NO_JUMP = -1

# extra statuses of execute_system, beside OK / NEED_EXIT / WATCH_HIT / exception causes
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
        return np.int64(0), np.int64(INSTRUCTION_ACCESS_FAULT)
    high = np.int64(memory[host2]) | (np.int64(memory[host2 + 1]) << 8)
    return low | (high << 16), np.int64(OK)


@nb.njit(cache=True)
def execute_atomic(
    state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, bits, n
):
    """LR, SC and AMOs (A chapter).  Returns (status, loaded value for rd)."""
    x = state
    ctx = state[DATA_CTX]
    size = 4 if op <= Op.AMOMAXU_W else 8
    address = x[rs1]
    if op == Op.LR_W or op == Op.LR_D:
        host, paddr, status = amo_address(state, machine, memory, tlb, address, size, ctx, True)
        if status != OK:
            return status, np.int64(0)
        value = read_host(memory, host, size)
        state[RESERVATION] = paddr
        return np.int64(OK), arith.sext32(value) if size == 4 else value
    host, paddr, status = amo_address(state, machine, memory, tlb, address, size, ctx, False)
    if status != OK:
        return status, np.int64(0)
    if op == Op.SC_W or op == Op.SC_D:
        reserved = state[RESERVATION] == paddr
        state[RESERVATION] = -1
        if not reserved:
            return np.int64(OK), np.int64(1)
        write_host(memory, host, size, x[rs2])
        return after_ram_store(machine, page_flags, decode_cache, host, size), np.int64(0)
    old = read_host(memory, host, size)
    if size == 4:
        old = arith.sext32(old)
    new = amo_compute((bits >> 27) & 0x1F, old, x[rs2], size)
    write_host(memory, host, size, new)
    return after_ram_store(machine, page_flags, decode_cache, host, size), old


@nb.njit(cache=True)
def execute_system(state, machine, tables, tlb, op, rd, rs1, rs2, imm, bits, n):
    """CSR instructions, ecall/ebreak, xRET, wfi, fences.  Returns (status, next pc or NO_JUMP).

    Privilege checks follow 8.6.1: an instruction HS-mode could execute raises a virtual
    instruction exception in VS/VU-mode when the spec says so (hstatus.VTSR/VTW/VTVM, or VU
    executing a supervisor instruction); one HS-mode could not execute is illegal."""
    x = state
    priv = state[PRIV]
    virt = state[VIRT]
    mstatus = state[CSR_MSTATUS]
    hstatus = state[CSR_HSTATUS]
    if (
        op == Op.CSRRW
        or op == Op.CSRRS
        or op == Op.CSRRC
        or op == Op.CSRRWI
        or op == Op.CSRRSI
        or op == Op.CSRRCI
    ):
        immediate = op == Op.CSRRWI or op == Op.CSRRSI or op == Op.CSRRCI
        source = rs1 if immediate else x[rs1]
        if op == Op.CSRRW or op == Op.CSRRWI:
            writes = True
        else:
            writes = rs1 != 0  # csrrs/csrrc with x0 or uimm 0 do not write (Zicsr 9.1)
        reads = not ((op == Op.CSRRW or op == Op.CSRRWI) and rd == 32)
        status, number = csr_access_fault(state, machine, tables, imm, writes)
        if status != OK:
            state[TRAP_TVAL] = bits
            return status, NO_JUMP
        old = np.int64(0)
        if reads:
            old = csr_read(state, machine, tables, number, n)
        if writes:
            if op == Op.CSRRW or op == Op.CSRRWI:
                new = source
            elif op == Op.CSRRS or op == Op.CSRRSI:
                new = old | source
            else:
                new = old & ~source
            csr_write(state, machine, tables, tlb, number, new, n)
            state[TRACE_CSR] = number  # for the commit log (rare: CSR writes only)
            state[TRACE_CSR_VALUE] = csr_read(state, machine, tables, number, n)
        x[rd] = old
        return np.int64(OK), NO_JUMP
    state[TRAP_TVAL] = bits  # illegal and virtual instruction exceptions report the bits
    if op == Op.ECALL:
        state[TRAP_TVAL] = 0
        if priv == PRIV_U:
            return np.int64(8), NO_JUMP
        if priv == PRIV_S:
            return np.int64(10 if virt else 9), NO_JUMP
        return np.int64(11), NO_JUMP
    if op == Op.EBREAK:
        state[TRAP_TVAL] = 0  # QEMU 7.2 leaves tval 0 for ebreak (allowed: 3.1.16)
        return np.int64(BREAKPOINT), NO_JUMP
    if op == Op.FENCE or op == Op.FENCE_I:
        # the decode cache follows every store, so fence.i has nothing left to do
        return np.int64(OK), NO_JUMP
    if op == Op.MRET:
        if priv != PRIV_M:
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        return np.int64(OK), mret(state, machine)
    if op == Op.SRET:
        if virt:
            if priv == PRIV_U or (hstatus & HSTATUS_VTSR):
                return np.int64(VIRTUAL_INSTRUCTION), NO_JUMP
        elif priv == PRIV_U or (priv == PRIV_S and (mstatus & MSTATUS_TSR)):
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        return np.int64(OK), sret(state, machine)
    if op == Op.WFI:
        if priv != PRIV_M and (mstatus & MSTATUS_TW):
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        if virt:
            if priv == PRIV_U or (hstatus & HSTATUS_VTW):
                return np.int64(VIRTUAL_INSTRUCTION), NO_JUMP
        elif priv == PRIV_U:
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        if any_pending_enabled(state, machine, state[TIME_NS] + n):
            return np.int64(OK), NO_JUMP
        return np.int64(WFI_SLEEP), NO_JUMP
    if op == Op.SFENCE_VMA:
        if virt:
            if priv == PRIV_U or (hstatus & HSTATUS_VTVM):
                return np.int64(VIRTUAL_INSTRUCTION), NO_JUMP
            # in VS-mode it fences the guest's own address spaces, in the current VMID
            vmid = (state[CSR_HGATP] >> 44) & 0x3FFF
            fence_address_space(
                state, tlb, BANK_IS_VS, x[rs1], rs1 != 0, x[rs2] & 0xFFFF, rs2 != 0, vmid, True
            )
            return np.int64(OK), NO_JUMP
        if priv == PRIV_U or (priv == PRIV_S and (mstatus & MSTATUS_TVM)):
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        fence_address_space(
            state, tlb, BANK_IS_HS, x[rs1], rs1 != 0, x[rs2] & 0xFFFF, rs2 != 0, np.int64(0), False
        )
        return np.int64(OK), NO_JUMP
    if has_hypervisor(machine) and (op == Op.HFENCE_VVMA or op == Op.HFENCE_GVMA):
        if virt:
            return np.int64(VIRTUAL_INSTRUCTION), NO_JUMP
        if priv == PRIV_U:
            return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
        if op == Op.HFENCE_VVMA:
            vmid = (state[CSR_HGATP] >> 44) & 0x3FFF
            fence_address_space(
                state, tlb, BANK_IS_VS, x[rs1], rs1 != 0, x[rs2] & 0xFFFF, rs2 != 0, vmid, True
            )
        else:
            if priv == PRIV_S and (mstatus & MSTATUS_TVM):
                return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP
            # the TLB is indexed by guest virtual address: a guest-physical fence drops the
            # whole VMID (or every VMID), which the spec allows
            fence_address_space(
                state,
                tlb,
                BANK_IS_VS,
                np.int64(0),
                False,
                np.int64(0),
                False,
                x[rs2] & 0x3FFF,
                rs2 != 0,
            )
        return np.int64(OK), NO_JUMP
    # hypervisor instructions without the H extension, and ILLEGAL
    return np.int64(ILLEGAL_INSTRUCTION), NO_JUMP


@nb.njit(cache=True)
def execute_hypervisor_memory(
    state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, n
):
    """HLV, HLVX and HSV (8.3.4): loads and stores as VS or VU (hstatus.SPVP) would do them,
    through vsatp and hgatp, from M, HS, or U with hstatus.HU.  Returns (status, value)."""
    x = state
    priv = state[PRIV]
    if state[VIRT]:
        return np.int64(VIRTUAL_INSTRUCTION), np.int64(0)
    if priv == PRIV_U and (state[CSR_HSTATUS] & HSTATUS_HU) == 0:
        return np.int64(ILLEGAL_INSTRUCTION), np.int64(0)
    guest_priv = PRIV_S if state[CSR_HSTATUS] & HSTATUS_SPVP else PRIV_U
    sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM) != 0
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
def run(state, machine, tables, memory, page_flags, tlb, decode_cache, budget, trace):
    """Execute up to ``budget`` instructions of one hart; returns an :class:`Exit` value."""
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
    while True:
        if n >= limit:
            # ---- events: budget, interrupts, next timer deadline ----
            if n >= budget:
                break
            now = state[TIME_NS] + n
            cause = select_interrupt(state, machine, now)
            if cause >= 0:
                if (
                    machine[M_FIRMWARE_TRAPS]
                    and trap_target(state, machine, cause, True) == TARGET_M
                ):
                    state[TRAP_CAUSE] = cause | np.int64(-(2**63))
                    exit_reason = np.int64(Exit.FIRMWARE)
                    break
                if trace is not None:
                    record_event(
                        trace,
                        state,
                        state[PRIV] | (state[VIRT] << 2),
                        pc,
                        np.int64(0),
                        INTERRUPT_RECORD - cause,
                        np.int64(0),
                    )
                pc = take_trap(state, machine, cause, True, np.int64(0), pc)
                fetch_page = np.int64(-1)
                state[WFI] = 0
            limit = min(budget, n + next_deadline(state, machine, now))
        if trace is None:
            pc, n = fast_loop(
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
            )
            if n >= limit:
                continue
        # ---- the general path: one instruction, whatever it is ----
        n += 1
        state[GENERAL_PATH] += 1
        # ---- fetch through the cached translation of the current page ----
        if (pc & PAGE_MASK) == fetch_page:
            host = pc + fetch_addend
        else:
            dctx = state[DATA_CTX]
            ctx = state[FETCH_CTX]
            paddr, status = tlb_lookup(state, machine, memory, tlb, pc, 2, ACCESS_EXECUTE, ctx)
            if status == OK:
                host = host_offset(machine, paddr, 2)
                if host < 0:
                    fault_at(state, pc, ctx)
                    status = np.int64(INSTRUCTION_ACCESS_FAULT)
            if status != OK:
                fetch_page = np.int64(-1)
                cause = status
                if (
                    machine[M_FIRMWARE_TRAPS]
                    and trap_target(state, machine, cause, False) == TARGET_M
                ):
                    state[TRAP_CAUSE] = cause
                    n -= 1
                    exit_reason = np.int64(Exit.FIRMWARE)
                    break
                if trace is not None:
                    record_event(
                        trace,
                        state,
                        state[PRIV] | (state[VIRT] << 2),
                        pc,
                        np.int64(0),
                        np.int64(-2 - cause),
                        state[TRAP_TVAL],
                    )
                pc = take_trap(state, machine, cause, False, state[TRAP_TVAL], pc)
                continue
            entry = ((pc >> 12) & TLB_SET_MASK) ^ TLB_EXEC_FLIP
            if tlb[tlb_slot(ctx, entry) + TLB_TAG_EXEC] == (pc & PAGE_MASK):
                fetch_page = pc & PAGE_MASK
                fetch_addend = host - pc
            else:
                fetch_page = np.int64(-1)  # PMP-limited page: translate every time
        slot = (host >> 1) & DECODE_CACHE_MASK
        if decode_cache[(slot << DC_SHIFT) + DC_TAG] != host:
            bits, status = fetch_bits(state, machine, memory, tlb, pc, host)
            if status != OK:
                if (
                    machine[M_FIRMWARE_TRAPS]
                    and trap_target(state, machine, status, False) == TARGET_M
                ):
                    state[TRAP_CAUSE] = status
                    n -= 1
                    exit_reason = np.int64(Exit.FIRMWARE)
                    break
                if trace is not None:
                    record_event(
                        trace,
                        state,
                        state[PRIV] | (state[VIRT] << 2),
                        pc,
                        np.int64(0),
                        np.int64(-2 - status),
                        state[TRAP_TVAL],
                    )
                pc = take_trap(state, machine, status, False, state[TRAP_TVAL], pc)
                fetch_page = np.int64(-1)
                continue
            d_op, d_rd, d_rs1, d_rs2, d_imm, d_len = decode(bits, tables)
            base = slot << DC_SHIFT
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
            elif status == ILLEGAL_INSTRUCTION or status == VIRTUAL_INSTRUCTION:
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
            elif status == ILLEGAL_INSTRUCTION:
                state[TRAP_TVAL] = decode_cache[(slot << DC_SHIFT) + DC_BITS]
            limit = n
        else:
            status, target = execute_system(
                state,
                machine,
                tables,
                tlb,
                op,
                rd,
                rs1,
                rs2,
                imm,
                decode_cache[(slot << DC_SHIFT) + DC_BITS],
                n,
            )
            if target != NO_JUMP:
                npc = target
            fetch_page = np.int64(-1)  # privilege, translation or interrupts may have changed
            limit = n
        # ---- retire, trap or leave ----
        if status != OK:
            if status == NEED_EXIT:
                n -= 1  # the instruction replays once Python has done the device access
                exit_reason = np.int64(Exit.MMIO)
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
            if machine[M_FIRMWARE_TRAPS] and trap_target(state, machine, status, False) == TARGET_M:
                state[TRAP_CAUSE] = status
                exit_reason = np.int64(Exit.FIRMWARE)
                n -= 1
                break
            if trace is not None:
                record(
                    trace,
                    state,
                    traced_mode,
                    pc,
                    slot,
                    decode_cache,
                    traced_rs1,
                    np.int64(-2 - status),
                    state[TRAP_TVAL],
                )
            pc = take_trap(state, machine, status, False, state[TRAP_TVAL], pc)
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
    return exit_reason

"""The kernel's fast loop: the common instructions, with nothing else live.

``fast_loop`` runs straight from the decode cache while every instruction is an ALU, M,
branch, jump or load/store op whose TLB entry hits, on a page without decoded code, in the
current fetch page, and before ``limit``.  At the first instruction it cannot finish that way it
returns *without executing it*, and ``core.run``'s general path does that one instruction with
full semantics (slow memory paths, CSRs, traps, tracing).  Semantics are therefore defined once,
by the general path; this loop is only a faster way to do the same thing for what it accepts.

It is a separate function so that LLVM allocates registers for this small loop alone, instead of
spilling its variables around the many calls of the general path.  The general path keeps its
own copy of these instructions on purpose: sharing one execute function between the two
(numba ``inline="always"``) measured thirty times slower, numba passing the arrays to a real
call for every instruction.
"""

import numba as nb
import numpy as np

from rvh.cpu import arith
from rvh.cpu.csr import fast_sstatus_write
from rvh.cpu.interrupts import mtime_at
from rvh.cpu.layout import (
    CSR_HTIMEDELTA,
    CSR_KEY_MASK,
    CSR_MSTATUS,
    CSR_READ_HOW,
    CSR_READ_INDEX_MASK,
    CSR_READ_KEYS,
    CSR_READ_SSTATUS,
    CSR_READ_VALID,
    CSR_WRITE_EVEN,
    CSR_WRITE_OK,
    DATA_CTX,
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
    M_CODE_WRITES,
    NON_M_CONTEXTS,
    PAGE_FLAG_WATCH,
    PAGE_MASK,
    PC,
    PRIV,
    PRIV_M,
    PRIV_S,
    RESERVATION,
    RESERVATION_VALUE,
    TIME_NS,
    TLB_ADDEND,
    TLB_ALL_CONTEXTS,
    TLB_EXEC_FLIP,
    TLB_FILLED,
    TLB_PADDR,
    TLB_SET_MASK,
    TLB_SETS,
    TLB_SHIFT,
    TLB_TAG_EXEC,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
    VIRT,
)
from rvh.cpu.memory import amo_compute, store_over_code
from rvh.cpu.mmu import OK, execute_sfence_vma
from rvh.isa.csrs import SSTATUS_MASK
from rvh.isa.fields import MSTATUS_TVM_MASK as TVM
from rvh.isa.instructions import Op
from rvh.tier.dispatch import queue_hot, run_block
from rvh.tier.layout import (
    COUNT_MASK,
    J_COUNTS,
    J_EPOCH,
    J_TABLE,
    J_THRESHOLD,
    JT_HOST,
    JT_LENGTH,
    JT_PC,
    JT_SHIFT,
    TABLE_MASK,
)

KEY_B = PAGE_MASK
KEY_H = PAGE_MASK | 1
KEY_W = PAGE_MASK | 3
KEY_D = PAGE_MASK | 7

U3 = np.uint64(3)
U2 = np.uint64(2)
U1 = np.uint64(1)
U12 = np.uint64(12)


@nb.njit(cache=True, nogil=True)
def fast_loop(
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
    jit=None,
):
    """Run from pc until an instruction needs the general path; returns (pc, n, fetch_page,
    fetch_addend).  With the translating tier on (``jit`` is its array, rvh/tier) it also
    runs the translated blocks that start where a taken branch or jump lands, and returns
    where one just got hot."""
    tlb_base = (dctx & (TLB_ALL_CONTEXTS - 1)) * TLB_SETS
    fetch_base = (x[FETCH_CTX] & (TLB_ALL_CONTEXTS - 1)) * TLB_SETS
    entered = False  # a taken branch or jump into another page: a block may start at pc
    # where the last block left with no block to go on to: a block may also start after the
    # instruction there (it may be one no block holds: a counter read, an FP operation)
    left_at = np.int64(-1)
    while n < limit:
        if (pc & PAGE_MASK) != fetch_page:
            # another code page (a call, a return): its fetch translation, if the TLB has it
            # for a RAM page, is what core.translate_fetch_page would find; else that does.
            # Not after the general path dropped the fetch page (-1: a trap, an xRET, a CSR
            # write): it then reads the contexts again, and dctx here would be stale
            if fetch_page == -1:
                break
            entry = (fetch_base + (((pc >> 12) & TLB_SET_MASK) ^ TLB_EXEC_FLIP)) << TLB_SHIFT
            if tlb[entry + TLB_TAG_EXEC] != (pc & PAGE_MASK):
                break
            fetch_page = pc & PAGE_MASK
            fetch_addend = tlb[entry + TLB_ADDEND]
            # straight-line code running into another page: a block may start here too (a
            # region ends at its page's end)
            entered = True
        host = pc + fetch_addend
        if jit is not None and entered:
            # a taken branch or jump got here, or a block left here: run the translated
            # block at pc, if any, in this loop (returning to core.run for it, and calling
            # this loop again after it, cost numba's reference counting of a dozen arrays,
            # a third of the kernel's time on Linux), else count the entry towards making
            # one hot (rvh/tier/dispatch.py)
            entered = False
            slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
            if jit[slot + JT_HOST] == host and jit[slot + JT_PC] == pc:
                if jit[J_EPOCH] != machine[M_CODE_WRITES]:
                    break  # code changed: core.run drops stale blocks first (run_blocks)
                if n + jit[slot + JT_LENGTH] <= limit:
                    done = run_block(
                        jit, slot, x, memory, tlb, page_flags, decode_cache, tlb_base, limit - n
                    )
                    if done != 0:
                        n += done
                        pc = x[PC]
                        entered = True  # a block may start where it left
                        left_at = pc
                        continue
                    # done == 0: its first instruction needs this loop or the general path
            else:
                counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
                count = jit[counter] + 1
                jit[counter] = count
                if count == jit[J_THRESHOLD] and queue_hot(jit, counter, host, pc):
                    break  # hot: core.run returns, so that Python compiles it
        base = ((host >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
        if decode_cache[base + DC_TAG] != host:
            break
        op = decode_cache[base + DC_OP]
        rd = decode_cache[base + DC_RD] & 63
        rs1 = decode_cache[base + DC_RS1] & 31
        rs2 = decode_cache[base + DC_RS2] & 31
        imm = decode_cache[base + DC_IMM]
        npc = pc + decode_cache[base + DC_LENGTH]
        if op == Op.ADDI:
            x[rd] = x[rs1] + imm
        elif op == Op.ADD:
            x[rd] = x[rs1] + x[rs2]
        elif op == Op.LD:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] == (a & KEY_D):
                x[rd] = mem_d[np.uint64(a + tlb[e + TLB_ADDEND]) >> U3]
            else:
                # misaligned within a RAM page (Linux times such copies at boot): its bytes,
                # as memory.load_slow reads them
                if tlb[e + TLB_TAG_READ] != (a & PAGE_MASK) or (a & 0xFFF) > 0xFF8:
                    break
                hm = a + tlb[e + TLB_ADDEND]
                value = np.int64(0)
                for i in range(8):
                    value |= np.int64(memory[hm + i]) << (8 * i)
                x[rd] = value
        elif op == Op.SD:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_WRITE] == (a & KEY_D):
                h = np.uint64(a + tlb[e + TLB_ADDEND])
                if page_flags[h >> U12]:
                    if page_flags[h >> U12] & PAGE_FLAG_WATCH:
                        break
                    store_over_code(machine, page_flags, decode_cache, np.int64(h), 8)
                mem_d[h >> U3] = x[rs2]
            else:
                # misaligned within a RAM page, as memory.store_slow writes it
                if tlb[e + TLB_TAG_WRITE] != (a & PAGE_MASK) or (a & 0xFFF) > 0xFF8:
                    break
                hm = a + tlb[e + TLB_ADDEND]
                if page_flags[hm >> 12]:
                    if page_flags[hm >> 12] & PAGE_FLAG_WATCH:
                        break
                    store_over_code(machine, page_flags, decode_cache, hm, 8)
                value = x[rs2]
                for i in range(8):
                    memory[hm + i] = (value >> (8 * i)) & 0xFF
        elif op == Op.LW:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_W):
                break
            x[rd] = mem_w[np.uint64(a + tlb[e + TLB_ADDEND]) >> U2]
        elif op == Op.SW:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_WRITE] != (a & KEY_W):
                break
            h = np.uint64(a + tlb[e + TLB_ADDEND])
            if page_flags[h >> U12]:
                if page_flags[h >> U12] & PAGE_FLAG_WATCH:
                    break
                store_over_code(machine, page_flags, decode_cache, np.int64(h), 4)
            mem_w[h >> U2] = x[rs2]
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
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_B):
                break
            x[rd] = memory[np.uint64(a + tlb[e + TLB_ADDEND])]
        elif op == Op.LB:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_B):
                break
            x[rd] = np.int64(np.int8(memory[np.uint64(a + tlb[e + TLB_ADDEND])]))
        elif op == Op.LHU:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_H):
                break
            x[rd] = mem_h[np.uint64(a + tlb[e + TLB_ADDEND]) >> U1] & 0xFFFF
        elif op == Op.LH:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_H):
                break
            x[rd] = mem_h[np.uint64(a + tlb[e + TLB_ADDEND]) >> U1]
        elif op == Op.LWU:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_READ] != (a & KEY_W):
                break
            x[rd] = mem_w[np.uint64(a + tlb[e + TLB_ADDEND]) >> U2] & 0xFFFFFFFF
        elif op == Op.SB:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_WRITE] != (a & KEY_B):
                break
            h = np.uint64(a + tlb[e + TLB_ADDEND])
            if page_flags[h >> U12]:
                if page_flags[h >> U12] & PAGE_FLAG_WATCH:
                    break
                store_over_code(machine, page_flags, decode_cache, np.int64(h), 1)
            memory[h] = x[rs2] & 0xFF
        elif op == Op.SH:
            a = x[rs1] + imm
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            if tlb[e + TLB_TAG_WRITE] != (a & KEY_H):
                break
            h = np.uint64(a + tlb[e + TLB_ADDEND])
            if page_flags[h >> U12]:
                if page_flags[h >> U12] & PAGE_FLAG_WATCH:
                    break
                store_over_code(machine, page_flags, decode_cache, np.int64(h), 2)
            mem_h[h >> U1] = x[rs2]
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
        elif op == Op.FENCE or op == Op.FENCE_I:
            # one hart at a time sees memory in program order, and the decode cache follows
            # every store, so neither fence has anything to do (Zifencei; RVWMO)
            pass
        elif op >= Op.CSRRW and op <= Op.CSRRCI:
            # a CSR the general path has found legal at this privilege and V since the last
            # CSR write that could change legality (layout.CSR_READ_KEYS): a read (csrrs/csrrc
            # with x0 or uimm 0, Zicsr 9.1), or a write where CSR_WRITE_OK allows it
            index = (imm ^ (imm >> 4) ^ (imm >> 8)) & CSR_READ_INDEX_MASK
            key = x[CSR_READ_KEYS + index]
            if (key & CSR_KEY_MASK) != (imm | (x[PRIV] << 12) | (x[VIRT] << 14) | CSR_READ_VALID):
                break
            how = x[CSR_READ_HOW + index]
            if rs1 != 0 or op == Op.CSRRW or op == Op.CSRRWI:
                if not key & CSR_WRITE_OK:
                    break
                source = rs1 if op >= Op.CSRRWI else x[rs1]  # uimm in the rs1 field
                old = x[how] if how >= 0 else x[CSR_MSTATUS] & SSTATUS_MASK
                if op == Op.CSRRW or op == Op.CSRRWI:
                    value = source
                elif op == Op.CSRRS or op == Op.CSRRSI:
                    value = old | source
                else:
                    value = old & ~source
                if how >= 0:  # no side effects (csr.plain_write_mask)
                    x[how] = value & ~np.int64(1) if key & CSR_WRITE_EVEN else value
                elif not fast_sstatus_write(x, machine, value, n):
                    break
                x[rd] = old
                if x[DATA_CTX] != dctx:
                    # SUM switched the TLB contexts: the loop is entered again with them (its
                    # bases stay loop invariants)
                    n += 1
                    pc = npc
                    break
            elif how >= 0:
                x[rd] = x[how]
            elif how == CSR_READ_SSTATUS:
                x[rd] = x[CSR_MSTATUS] & SSTATUS_MASK
            else:  # time, at this instruction; VS and VU see time + htimedelta (8.2.7)
                value = mtime_at(machine, x[TIME_NS] + n + 1)
                if x[VIRT]:
                    value += x[CSR_HTIMEDELTA]
                x[rd] = value
        elif op == Op.SFENCE_VMA:
            if (
                (x[TLB_FILLED] & NON_M_CONTEXTS) == 0
                and x[VIRT] == 0
                and (x[PRIV] == PRIV_M or (x[PRIV] == PRIV_S and not x[CSR_MSTATUS] & TVM))
            ):
                pass  # legal, and no context a fence concerns holds anything
            elif execute_sfence_vma(x, tlb, rs1, rs2) != OK:
                break  # the general path raises the exception
            else:
                # the next fetch must see the fence: if the fetch page's entry went, it
                # translates again (through the general path)
                entry = (fetch_base + (((pc >> 12) & TLB_SET_MASK) ^ TLB_EXEC_FLIP)) << TLB_SHIFT
                if tlb[entry + TLB_TAG_EXEC] != fetch_page:
                    fetch_page = -1
        elif op >= Op.LR_W and op <= Op.AMOMAXU_D:
            # LR, SC and AMOs on a RAM page whose TLB entry hits, as core.execute_atomic does
            # them; a miss, a misaligned address (the key's low bits) or an HTIF page breaks
            a = x[rs1]
            e = (tlb_base + ((a >> 12) & TLB_SET_MASK)) << TLB_SHIFT
            word = op <= Op.AMOMAXU_W
            key = a & (KEY_W if word else KEY_D)
            if op == Op.LR_W or op == Op.LR_D:
                if tlb[e + TLB_TAG_READ] != key:
                    break
                h = np.uint64(a + tlb[e + TLB_ADDEND])
                value = mem_w[h >> U2] if word else mem_d[h >> U3]  # LR.W sign-extends
                x[RESERVATION] = tlb[e + TLB_PADDR] | (a & ~PAGE_MASK)
                x[RESERVATION_VALUE] = value
                x[rd] = value
            else:
                # SC and AMOs need write permission, which covers their read
                if tlb[e + TLB_TAG_WRITE] != key:
                    break
                h = np.uint64(a + tlb[e + TLB_ADDEND])
                if page_flags[h >> U12] & PAGE_FLAG_WATCH:
                    break
                current = mem_w[h >> U2] if word else mem_d[h >> U3]
                stores = True
                if op == Op.SC_W or op == Op.SC_D:
                    # pairs with its LR as core.execute_atomic decides: the reserved address,
                    # and memory at the SC's width still holding what the LR read there
                    paddr = tlb[e + TLB_PADDR] | (a & ~PAGE_MASK)
                    reserved = x[RESERVATION_VALUE]
                    stores = x[RESERVATION] == paddr and current == (
                        arith.sext32(reserved) if word else reserved
                    )
                    x[RESERVATION] = -1
                    new = x[rs2]
                    result = np.int64(0) if stores else np.int64(1)
                else:
                    new = amo_compute(op, current, x[rs2], 4 if word else 8)
                    result = current
                if stores:
                    if page_flags[h >> U12]:
                        store_over_code(
                            machine, page_flags, decode_cache, np.int64(h), 4 if word else 8
                        )
                    if word:
                        mem_w[h >> U2] = new
                    else:
                        mem_d[h >> U3] = new
                x[rd] = result
        else:
            break
        n += 1
        if jit is not None and (npc != pc + decode_cache[base + DC_LENGTH] or pc == left_at):
            # a taken branch or jump, or the instruction a block left at: a block may start
            # at npc (checked at the loop's top, once it has npc's page translation)
            entered = True
        pc = npc
    return pc, n, fetch_page, fetch_addend

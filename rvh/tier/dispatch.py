"""The kernel's side of the translating tier: find the block at pc and call it.

``run_blocks`` first drops the translations of every host page whose decoded code changed since
its last call (the pages the machine array logs at ``M_CODE_PAGES``; all of them if more pages
changed than the log holds), then runs translated blocks, one after another through the jump
table, while pc is in the current fetch page and each found block fits in what is left before
``limit``.  It returns at the first pc without a block, counting that entry towards making the
block there hot.  A block never retires an instruction the fast loop would not
(rvh/tier/translate.py), so the kernel's state after it is what the fast loop would have left.
"""

import numba as nb
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from rvh.cpu.layout import (
    CODE_PAGE_MASK,
    CODE_PAGE_RING,
    M_CODE_PAGES,
    M_CODE_WRITES,
    PAGE_FLAGS_OF_THE_TIER,
    PAGE_MASK,
    PC,
    TLB_ALL_CONTEXTS,
    TLB_SETS,
)
from rvh.tier.layout import (
    BLOCK_CC,
    COUNT_MASK,
    J_CALLS,
    J_COUNTS,
    J_EPOCH,
    J_EXECUTED,
    J_FLUSHES,
    J_PAGE_FLUSHES,
    J_QUEUE,
    J_QUEUE_LEN,
    J_TABLE,
    J_THRESHOLD,
    JT_ADDRESS,
    JT_FIELDS,
    JT_HOST,
    JT_LENGTH,
    JT_PC,
    JT_SHIFT,
    QUEUE_ENTRIES,
    TABLE_ENTRIES,
    TABLE_MASK,
)


@intrinsic
def call_block(
    typingctx, address, x, memory, tlb, page_flags, decode_cache, jit, tlb_base, remaining
):
    """Call the translated block at ``address``: i64 block(ptr x, ptr memory, ptr tlb,
    ptr page_flags, ptr decode_cache, ptr jit, i64 tlb_base, i64 remaining, i64 count),
    which runs it and the blocks it chains to, at most ``remaining`` instructions, and
    returns how many retired (``count``, 0 here, is what the chain retired before it),
    leaving the next pc in x[PC].  Only data pointers cross, so the numba cache stays valid.
    The call uses the blocks' own calling convention (layout.BLOCK_CC): the kernel, not
    each chained block, saves the registers it needs."""
    signature = types.int64(
        address, x, memory, tlb, page_flags, decode_cache, jit, tlb_base, remaining
    )

    def codegen(context, builder, sig, args):
        pointers = []
        for array_type, value in zip(sig.args[1:7], args[1:7], strict=True):
            array = context.make_array(array_type)(context, builder, value)
            pointers.append(builder.bitcast(array.data, ir.IntType(8).as_pointer()))
        i8p = ir.IntType(8).as_pointer()
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i8p] * 6 + [i64, i64, i64])
        function = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(
            function, [*pointers, args[7], args[8], ir.Constant(i64, 0)], cconv=BLOCK_CC
        )

    return signature, codegen


@nb.njit(cache=True, nogil=True, inline="always")
def run_block(jit, slot, x, memory, tlb, page_flags, decode_cache, tlb_base, remaining):
    """Call the block installed at jump-table ``slot`` (at most ``remaining`` instructions)
    and count the call; returns how many instructions it retired."""
    done = call_block(
        jit[slot + JT_ADDRESS], x, memory, tlb, page_flags, decode_cache, jit, tlb_base, remaining
    )
    jit[J_CALLS] += 1
    jit[J_EXECUTED] += done
    return done


@nb.njit(cache=True, nogil=True)
def flush_table(jit, page_flags):
    """Forget every installed block (their code stays compiled, Python can reinstall it)."""
    for entry in range(TABLE_ENTRIES):
        slot = J_TABLE + (entry << JT_SHIFT)
        if jit[slot + JT_HOST] >= 0:
            page_flags[jit[slot + JT_HOST] >> 12] &= ~PAGE_FLAGS_OF_THE_TIER
            jit[slot + JT_HOST] = -1
    for entry in range(COUNT_MASK + 1):
        jit[J_COUNTS + entry] = 0
    jit[J_FLUSHES] += 1


@nb.njit(cache=True, nogil=True)
def flush_page(jit, page_flags, page):
    """Forget the blocks installed from host page ``page``.  The table and the counters are
    indexed by host offset / 2, so a page's blocks and counts lie in one run of 2048 slots."""
    first = (page << 11) & TABLE_MASK
    for entry in range(first, first + 2048):
        slot = J_TABLE + (entry << JT_SHIFT)
        if jit[slot + JT_HOST] >> 12 == page:
            jit[slot + JT_HOST] = -1
    first = (page << 11) & COUNT_MASK
    for entry in range(first, first + 2048):
        jit[J_COUNTS + entry] = 0
    page_flags[page] &= ~PAGE_FLAGS_OF_THE_TIER
    jit[J_PAGE_FLUSHES] += 1


@nb.njit(cache=True, nogil=True)
def drop_changed_code(jit, machine, page_flags):
    """Drop the translations of the host pages written since the last call (M_CODE_PAGES)."""
    writes = machine[M_CODE_WRITES]
    if writes - jit[J_EPOCH] > CODE_PAGE_RING:
        flush_table(jit, page_flags)  # the log has wrapped: which pages is no longer known
    else:
        for write in range(jit[J_EPOCH], writes):
            flush_page(jit, page_flags, machine[M_CODE_PAGES + (write & CODE_PAGE_MASK)])
    jit[J_EPOCH] = writes


@nb.njit(cache=True, nogil=True)
def block_entry(jit, host, pc):
    """An entry into the code at pc (host offset ``host``), a place a block may start: 1 if
    a block is installed there; else the entry is counted, and 2 if that made the block hot
    (it is queued for Python), 0 if not."""
    slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
    if jit[slot + JT_HOST] == host and jit[slot + JT_PC] == pc:
        return 1
    counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
    count = jit[counter] + 1
    jit[counter] = count
    if count == jit[J_THRESHOLD] and queue_hot(jit, counter, host, pc):
        return 2
    return 0


@nb.njit(cache=True, nogil=True)
def queue_hot(jit, counter, host, pc):
    """Queue the block at pc (host offset ``host``), whose entries reached the threshold, for
    Python to compile; False if the queue is full (its count then waits for the next entry)."""
    if jit[J_QUEUE_LEN] >= QUEUE_ENTRIES:
        jit[counter] -= 1
        return False
    queued = J_QUEUE + 2 * jit[J_QUEUE_LEN]
    jit[queued] = host
    jit[queued + 1] = pc
    jit[J_QUEUE_LEN] += 1
    return True


@nb.njit(cache=True, nogil=True)
def run_blocks(
    x, memory, page_flags, tlb, decode_cache, machine, jit, pc, n, limit, dctx, fetch_page, addend
):
    """Run translated blocks from pc; returns (pc, n)."""
    if jit[J_EPOCH] != machine[M_CODE_WRITES]:
        drop_changed_code(jit, machine, page_flags)
    tlb_base = (dctx & (TLB_ALL_CONTEXTS - 1)) * TLB_SETS
    while n < limit and (pc & PAGE_MASK) == fetch_page:
        host = pc + addend
        slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
        if jit[slot + JT_HOST] != host or jit[slot + JT_PC] != pc:
            block_entry(jit, host, pc)  # counts it
            break
        if n + jit[slot + JT_LENGTH] > limit:
            break
        done = run_block(jit, slot, x, memory, tlb, page_flags, decode_cache, tlb_base, limit - n)
        n += done
        pc = x[PC]
        if done == 0:
            break  # its first instruction needs the interpreter
    return pc, n


assert JT_FIELDS == 1 << JT_SHIFT
# a page's 2048 possible block starts fit the table and the counters without wrapping
assert TABLE_MASK + 1 >= 2048 and COUNT_MASK + 1 >= 2048

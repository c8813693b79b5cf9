"""Where things live in the translating tier's array (``jit``, int64, one per machine).

The kernel and the Python side of the tier (rvh/tier/engine.py) share this one array, as the
kernel shares ``state`` with Python: the kernel counts block entries and queues hot ones here,
Python compiles them between kernel calls and installs their addresses in the jump table.
"""

J_EPOCH = 0  # the machine's M_CODE_WRITES when the jump table was last known valid
J_QUEUE_LEN = 1  # hot blocks waiting for Python (pairs at J_QUEUE)
J_EXECUTED = 2  # instructions retired in translated code (statistics)
J_CALLS = 3  # calls of translated blocks (statistics)
J_FLUSHES = 4  # whole jump-table flushes: more code pages written than M_CODE_PAGES holds
J_THRESHOLD = 5  # entries of a block before it is queued for translation
J_PAGE_FLUSHES = 6  # pages whose translations were dropped after writes to them (statistics)
J_QUEUE = 8  # + 2 * i: host offset, then virtual pc, of hot block i
QUEUE_ENTRIES = 64
# hotness counters, direct-mapped by host offset (collisions only share a count)
J_COUNTS = J_QUEUE + 2 * QUEUE_ENTRIES
COUNT_ENTRIES = 1 << 14
COUNT_MASK = COUNT_ENTRIES - 1
# the jump table: translated blocks, direct-mapped by host offset, JT_FIELDS slots each
J_TABLE = J_COUNTS + COUNT_ENTRIES
TABLE_ENTRIES = 1 << 14  # Linux: 702 of 1,834 blocks shared a slot at 1 << 12, 293 at 1 << 14
TABLE_MASK = TABLE_ENTRIES - 1
JT_HOST = 0  # host offset of the block's first instruction, or -1
JT_PC = 1  # the virtual pc the block was translated at (pc-relative values depend on it)
JT_ADDRESS = 2  # the compiled function's address
JT_LENGTH = 3  # the most instructions one call can retire
JT_FIELDS = 4
JT_SHIFT = 2
JIT_SIZE = J_TABLE + TABLE_ENTRIES * JT_FIELDS
# the calling convention of block functions (LLVM's preserve_none): every argument in a
# register and no callee-saved registers, so that chaining to the next block (a musttail
# call) saves, restores and reloads nothing; the kernel's call saves what it needs, once
BLOCK_CC = "preserve_nonecc"

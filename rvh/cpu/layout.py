"""Where things live in the arrays the numba kernel works on.

The kernel's contract (``../shared/DESIGN.md``, refined in ``docs/architecture.md``) is arrays
in, one exit reason out.  This module names every slot so that Python code (devices, the SBI,
snapshots, the trace writer, tests) and the kernel agree.  Only true constants live here:
numba freezes module globals into the compiled code.

hart state (int64, one array per hart)
    GPRs, pc, privilege, V, counters, the pending-MMIO record, the flat CSR file (fcsr in
    CSR 3's slot) and the FP registers f0-f31.
machine (int64, shared by all harts)
    the memory map of RAM and ROM, CLINT registers, interrupt lines raised by Python devices.
memory (uint8)
    RAM followed by the boot ROM; host offset of a physical address is given by the regions.
page_flags (uint8, one per 4 KiB of memory)
    pages that hold decoded instructions or a watched word (HTIF tohost): stores there take the
    slow path that keeps the decode cache coherent.
tlb (int64, contexts x sets x fields)
    software TLB, one bank per translation context, QEMU-softmmu style tags per access type.
decode_cache (int64, entries x fields)
    pre-decoded instructions, direct-mapped by host offset, shared by the harts.
"""

from rvh.isa.csrs import CsrNumber

# ---- hart state -------------------------------------------------------------------------
X = 0  # x0..x31 at X + n
X_SINK = 32  # writes to x0 are decoded to this slot, so x0 reads stay zero without a check
PC = 33
PRIV = 34  # 0 = U, 1 = S, 3 = M
VIRT = 35  # the V bit of the H extension
INSTRET = 36  # retired instructions, minus those executed in the current kernel call
CYCLE = 37
TIME_NS = 38  # this hart's virtual clock in ns, minus the current call's instructions
RESERVATION = 39  # physical address reserved by LR, or -1
MMIO_STATE = 41  # see MMIO_* below
MMIO_ADDR = 42  # physical address
MMIO_SIZE = 43  # bytes
MMIO_VALUE = 44  # store data, or the load result Python supplies
HARTID = 45
TRAP_TVAL = 46  # side channel from slow paths to the trap code
TRAP_TVAL2 = 47  # htval/mtval2 (guest physical address >> 2)
TRAP_TINST = 48  # htinst/mtinst
TRAP_GVA = 49  # 1 if TRAP_TVAL holds a guest virtual address
EXCEPTIONS = 50  # exceptions taken (statistics)
INTERRUPTS = 51  # interrupts taken
WFI = 53  # 1 while the hart is stopped in wfi
FETCH_CTX = 54  # TLB context of instruction fetch
DATA_CTX = 55  # TLB context of loads and stores (differs with mstatus.MPRV)
TLB_MISSES = 56
GENERAL_PATH = 57  # instructions the general path executed (statistics)
MMIO_EXITS = 58
HALTED = 59  # 1 when the hart is stopped (HSM: not started / stopped)
LAST_CAUSE = 61  # last trap cause taken (statistics, tests)
PMP_ACTIVE = 62  # 1 when some PMP entry is configured (slow-path check needed)
TRAP_CAUSE = 63  # cause of a trap handed to the emulator's firmware (Exit.FIRMWARE)
TRACE_POS = 64  # records written to the trace buffer
TLB_BANK_HS = 65  # TLB bank of the V=0 contexts (chosen by satp)
TLB_BANK_VS = 66  # TLB bank of the V=1 contexts (chosen by hgatp and vsatp)
TLB_BANK_NEXT = 67  # next bank to recycle
TLB_BANK_KIND = 68  # + bank: BANK_IS_FREE, BANK_IS_HS or BANK_IS_VS
TLB_BANK_SATP = 76  # + bank: the satp (HS) or vsatp (VS) the bank translates for
TLB_BANK_HGATP = 84  # + bank: the hgatp of a VS bank
TRACE_CSR = 92  # the CSR the current instruction wrote (for the trace), or -1
TRACE_CSR_VALUE = 93  # its value after the write
# Instructions retired per privilege level (statistics, `rvh run --stats`): the kernel credits
# the instructions retired since LEVEL_MARK to the level being left at each privilege change
# (trap entry, xRET) and when it returns, so the fast loop counts nothing extra.  The levels
# are indexed by LEVEL_* below; their sum is LEVEL_MARK, which equals INSTRET after each run.
RETIRED_BY_LEVEL = 94  # + LEVEL_M ... LEVEL_U
LEVEL_MARK = 99  # INSTRET at the last crediting
EXIT_VMID = 100  # VMID of the VM whose exit HS-mode handles (from hgatp at the V=1 -> 0 trap)
HS_BY_VMID = 101  # + VMID (VMIDs past HS_VMID_SLOTS - 1 share the last): HS-mode instructions
HS_VMID_SLOTS = 16
# the debugger's watchpoints (rvh/cpu/debug.py): 1 + the index of the watch an access touched,
# or 0, and the address of that access; the kernel exits after the instruction retires
DEBUG_WATCH_HIT = 117
DEBUG_WATCH_ADDR = 118
# CSR reads the fast loop may do (rvh/cpu/fast.py): a direct-mapped cache of reads the general
# path found legal, indexed by csr_read_index(number).  A key is the CSR number with the
# privilege and V it was read at (CSR_READ_VALID set); its "how" is the state slot to read, or
# CSR_READ_SSTATUS / CSR_READ_TIME.  Legality depends on nothing else a read could meet that
# only CSR writes do not change (counteren, envcfg, TVM...), so every CSR write, and every
# kernel entry (Python may have written the state), empties it.
CSR_READ_KEYS = 119  # + index
CSR_READ_HOW = 151  # + index (ends at 182)
CSR_READ_ENTRIES = 32
CSR_READ_INDEX_MASK = CSR_READ_ENTRIES - 1
CSR_READ_VALID = 1 << 16
CSR_READ_SSTATUS = -1  # mstatus & SSTATUS_MASK
CSR_READ_TIME = -2  # mtime (+ htimedelta with V=1)
# Key bits above the read key: a write is legal too and the fast loop may do it (rvh/cpu/csr.py
# fast_csr_write).  The CSRs that get them are written without side effects (sscratch, sepc,
# scause...: the slot, all bits or all but bit 0 with CSR_WRITE_EVEN), or are sstatus, whose
# side effects the fast loop does itself.  Writes of these CSRs leave the cache as it is.
CSR_WRITE_OK = 1 << 17
CSR_WRITE_EVEN = 1 << 18  # an xepc: bit 0 is always zero
CSR_KEY_MASK = CSR_WRITE_OK - 1  # the read key: number, privilege, V, CSR_READ_VALID
# the leaf level (0: 4 KiB, 1: 2 MiB, ...) of the last first-stage walk, which tells the TLB
# whether the page it fills is a piece of a superpage (an address fence must drop every piece)
WALK_LEAF_LEVEL = 183
RESERVATION_VALUE = 184  # the value the LR read (sign-extended for LR.W): its SC compares it
# The Sdtrig triggers (rvh/cpu/triggers.py): tselect lives in its CSR slot, each trigger's tdata1
# and tdata2 here (tdata3 reads 0 for the two types QEMU 7.2 offers).  TRIGGERS_ARMED sums up
# what the triggers can match (TRIGGER_ARMED_* bits), so the kernel asks nothing while it is 0.
TRIGGERS = 2  # QEMU 7.2's count
TRIGGER_TDATA1 = 185  # + trigger
TRIGGER_TDATA2 = TRIGGER_TDATA1 + TRIGGERS  # + trigger
TRIGGERS_ARMED = TRIGGER_TDATA2 + TRIGGERS
TRIGGER_ARMED_LOAD = 1  # the bits are the access bits of mcontrol/mcontrol6
TRIGGER_ARMED_STORE = 2
TRIGGER_ARMED_EXECUTE = 4
# bit c set when full TLB context c may hold translations (set when one is filled, cleared when
# an address-space fence empties the context): a fence skips what it can see is empty at once
TLB_FILLED = TRIGGERS_ARMED + 1
# The last G-stage leaf a walk found (mmu.walk): the hgatp it was found under (0: none, since a
# G-stage walk happens only when hgatp's mode is not Bare), the leaf's span as a shift, the
# region number (guest physical address >> shift) and the PTE as written back.  A two-stage TLB
# miss whose guest physical address falls in the same leaf then skips the G-stage walk, as a
# hart's G-stage TLB would; HFENCE.GVMA, PMP changes and a reset forget it (mmu.forget_g_leaf).
G_LEAF_HGATP = TLB_FILLED + 1
G_LEAF_SHIFT = G_LEAF_HGATP + 1
G_LEAF_REGION = G_LEAF_SHIFT + 1
G_LEAF_PTE = G_LEAF_REGION + 1
# the fixed slots above, in order, may not overlap one another or the CSRs
assert HS_BY_VMID + HS_VMID_SLOTS <= DEBUG_WATCH_HIT < DEBUG_WATCH_ADDR < CSR_READ_KEYS
assert CSR_READ_KEYS + CSR_READ_ENTRIES <= CSR_READ_HOW
assert CSR_READ_HOW + CSR_READ_ENTRIES <= WALK_LEAF_LEVEL < RESERVATION_VALUE < TRIGGER_TDATA1
assert (
    TRIGGER_TDATA1 + TRIGGERS
    <= TRIGGER_TDATA2
    < TRIGGERS_ARMED
    < TLB_FILLED
    < G_LEAF_HGATP
    < G_LEAF_PTE
    < 256
)  # CSR_BASE
CSR_BASE = 256  # CSR n lives at CSR_BASE + n
F = CSR_BASE + 4096  # f0..f31 at F + n (64 bits each; single values NaN-boxed, 11.1, 12.2)
STATE_SIZE = F + 32

# The kernel's CSR slots: CSR_<NAME> is where CSR <name> lives in the state (CSR_BASE + its
# number from rvh.isa.csrs.CsrNumber, the CSR table's enum).  Not the CSR number itself, which
# the C header calls CSR_<NAME>.
CSR_FCSR = CSR_BASE + CsrNumber["FCSR"]  # fflags and frm are views of it
CSR_STVEC = CSR_BASE + CsrNumber["STVEC"]
CSR_SCOUNTEREN = CSR_BASE + CsrNumber["SCOUNTEREN"]
CSR_SEPC = CSR_BASE + CsrNumber["SEPC"]
CSR_SCAUSE = CSR_BASE + CsrNumber["SCAUSE"]
CSR_STVAL = CSR_BASE + CsrNumber["STVAL"]
CSR_STIMECMP = CSR_BASE + CsrNumber["STIMECMP"]
CSR_SATP = CSR_BASE + CsrNumber["SATP"]
CSR_VSSTATUS = CSR_BASE + CsrNumber["VSSTATUS"]
CSR_VSTVEC = CSR_BASE + CsrNumber["VSTVEC"]
CSR_VSEPC = CSR_BASE + CsrNumber["VSEPC"]
CSR_VSCAUSE = CSR_BASE + CsrNumber["VSCAUSE"]
CSR_VSTVAL = CSR_BASE + CsrNumber["VSTVAL"]
CSR_VSTIMECMP = CSR_BASE + CsrNumber["VSTIMECMP"]
CSR_VSATP = CSR_BASE + CsrNumber["VSATP"]
CSR_MSTATUS = CSR_BASE + CsrNumber["MSTATUS"]
CSR_MEDELEG = CSR_BASE + CsrNumber["MEDELEG"]
CSR_MIDELEG = CSR_BASE + CsrNumber["MIDELEG"]
CSR_MIE = CSR_BASE + CsrNumber["MIE"]
CSR_MTVEC = CSR_BASE + CsrNumber["MTVEC"]
CSR_MCOUNTEREN = CSR_BASE + CsrNumber["MCOUNTEREN"]
CSR_MENVCFG = CSR_BASE + CsrNumber["MENVCFG"]
CSR_MEPC = CSR_BASE + CsrNumber["MEPC"]
CSR_MCAUSE = CSR_BASE + CsrNumber["MCAUSE"]
CSR_MTVAL = CSR_BASE + CsrNumber["MTVAL"]
CSR_MIP = CSR_BASE + CsrNumber["MIP"]
CSR_MTINST = CSR_BASE + CsrNumber["MTINST"]
CSR_MTVAL2 = CSR_BASE + CsrNumber["MTVAL2"]
CSR_PMPCFG0 = CSR_BASE + CsrNumber["PMPCFG0"]
CSR_PMPADDR0 = CSR_BASE + CsrNumber["PMPADDR0"]
CSR_MCYCLE = CSR_BASE + CsrNumber["MCYCLE"]
CSR_MINSTRET = CSR_BASE + CsrNumber["MINSTRET"]
CSR_HSTATUS = CSR_BASE + CsrNumber["HSTATUS"]
CSR_HEDELEG = CSR_BASE + CsrNumber["HEDELEG"]
CSR_HIDELEG = CSR_BASE + CsrNumber["HIDELEG"]
CSR_HTIMEDELTA = CSR_BASE + CsrNumber["HTIMEDELTA"]
CSR_HCOUNTEREN = CSR_BASE + CsrNumber["HCOUNTEREN"]
CSR_HENVCFG = CSR_BASE + CsrNumber["HENVCFG"]
CSR_HTVAL = CSR_BASE + CsrNumber["HTVAL"]
CSR_HVIP = CSR_BASE + CsrNumber["HVIP"]
CSR_HTINST = CSR_BASE + CsrNumber["HTINST"]
CSR_HGATP = CSR_BASE + CsrNumber["HGATP"]
CSR_TSELECT = CSR_BASE + CsrNumber["TSELECT"]

# MMIO_STATE values.  The kernel exits with a REQUEST; Python performs the access and sets
# DONE (or FAULT); the kernel then re-executes the same instruction, which consumes the result.
MMIO_NONE = 0
MMIO_LOAD_REQUEST = 1
MMIO_STORE_REQUEST = 2
MMIO_DONE = 3
MMIO_FAULT = 4

PRIV_U = 0
PRIV_S = 1
PRIV_M = 3

# privilege levels of RETIRED_BY_LEVEL (HS is S with V=0, VS and VU are V=1)
LEVEL_M = 0
LEVEL_HS = 1
LEVEL_VS = 2
LEVEL_VU = 3
LEVEL_U = 4
LEVEL_NAMES = ("M", "HS", "VS", "VU", "U")

# ---- machine (shared) -------------------------------------------------------------------
M_RAM_BASE = 0
M_RAM_SIZE = 1
M_ROM_BASE = 2
M_ROM_SIZE = 3
M_ROM_HOST = 4  # host offset of the ROM in `memory` (just after RAM)
M_NUM_HARTS = 5
M_MTIME_OFFSET = 6  # mtime = now_ns // NS_PER_TICK + M_MTIME_OFFSET
M_NS_PER_TICK = 7  # 100: a 10 MHz timebase with one instruction per ns of virtual time
M_TOHOST = 8  # physical address of the HTIF tohost word, or -1
M_FROMHOST = 9
M_MISA = 10
M_CLINT_BASE = 11
# 1 while dirty logging is on (rvh/dirty.py): a store's TLB fill marks its RAM page in the
# dirty bitmap, the machine array's words from DIRTY_BITMAP on (one bit per 4 KiB of RAM)
M_DIRTY_LOG = 12
M_FIRMWARE_TRAPS = 13  # 1: traps to M-mode exit to Python's built-in SBI firmware (--sbi)
M_MSIP = 16  # + hartid
M_MTIMECMP = 24  # + hartid
M_EXT_IP = 32  # + hartid: MEIP/SEIP/VSEIP bits driven by the interrupt controller
MAX_HARTS = 8
# + exception code: 0 delivers the exception as itself, c + 1 delivers it with cause c instead.
# Only mutation testing (tools/mutate) sets it: a planted bug with no kernel recompile.
M_CAUSE_MUTANT = 40
CAUSE_MUTANT_CODES = 24  # exception codes 0..23 (privileged spec 3.1.15, H 8.6.1)
# The debugger's breakpoints and watchpoints (rvh/gdb), by virtual address.  The counts are 0
# unless gdb set some, and the kernel looks at them only off its fast path.
M_BREAKPOINTS = 64  # how many addresses follow
M_BREAK_ADDR = 65  # + i: the virtual address of breakpoint i
MAX_BREAKPOINTS = 32
M_WATCHES = M_BREAK_ADDR + MAX_BREAKPOINTS  # how many watches follow
M_WATCH_BASE = M_WATCHES + 1  # + WATCH_FIELDS * i: watch i
WATCH_START = 0  # first virtual address watched
WATCH_END = 1  # one past the last
WATCH_KIND = 2  # WATCH_READS | WATCH_WRITES
WATCH_FIELDS = 3
WATCH_READS = 1
WATCH_WRITES = 2
MAX_WATCHPOINTS = 8
# Moves whenever a decoded instruction leaves the decode cache (a store or Python's write over
# it, or another instruction taking its entry) on a page the translating tier (rvh/tier) has
# blocks on (PAGE_FLAG_TRANSLATED); the host page goes into a ring of CODE_PAGE_RING slots at
# M_CODE_PAGES (slot M_CODE_WRITES % CODE_PAGE_RING).  The tier then drops that page's
# translations, or all of them when more pages changed than the ring holds.
M_CODE_PAGES = 123
CODE_PAGE_RING = 4
CODE_PAGE_MASK = CODE_PAGE_RING - 1
M_CODE_WRITES = 127
assert M_WATCH_BASE + WATCH_FIELDS * MAX_WATCHPOINTS <= M_CODE_PAGES
assert M_CODE_PAGES + CODE_PAGE_RING == M_CODE_WRITES
MACHINE_SIZE = 128
DIRTY_BITMAP = MACHINE_SIZE  # the dirty bitmap follows the machine's fixed slots

# ---- TLB ---------------------------------------------------------------------------------
# 512 sets of 4 KiB cover 2 MiB per context: Linux's boot missed about 2.5 M times with 256
TLB_SETS = 512
TLB_SET_MASK = TLB_SETS - 1
# Fetches use the set at the other half of the table, so code does not evict the data page
# that shares its low page-number bits (RAM at 0x8000_0000 and devices such as 0x1000_0000).
TLB_EXEC_FLIP = TLB_SETS // 2
TLB_TAG_READ = 0
TLB_TAG_WRITE = 1
TLB_TAG_EXEC = 2
TLB_ADDEND = 3  # host offset = virtual address + addend
TLB_PADDR = 4  # physical page address (for MMIO pages that have no host offset)
TLB_VPAGE = 5  # the virtual page the entry describes
# In a context's first entry only: 1 once a translation has been filled into the context since
# it was last flushed.  A flush skips contexts still empty, so an SFENCE.VMA costs what the
# contexts in use cost, not the whole table (Linux fences often, mostly on few contexts).
TLB_CTX_FILLED = 6
# In a context's first entry only: the largest leaf level of the first-stage translations filled
# into the context since its last flush (0: only 4 KiB pages).  The TLB keeps a superpage as 4 KiB
# pieces, and SFENCE.VMA with an address must drop the whole leaf (4.2.1): with superpage pieces
# around, an address fence drops every entry in the fenced address's region of that size.
TLB_CTX_SUPER = 7
TLB_FIELDS = 8
TLB_SHIFT = 3  # log2(TLB_FIELDS): the tlb array is flat, index (ctx*SETS + set) << 3
# Translation contexts: privilege x virtualization x SUM (MXR and PMP changes flush).
CTX_M = 0
CTX_S = 1
CTX_S_SUM = 2
CTX_U = 3
CTX_VS = 4
CTX_VS_SUM = 5
CTX_VU = 6
TLB_CONTEXTS = 8  # per bank
# Banks tag the TLB by address space: a bank holds the translations of one satp (ASID and
# root), or of one (hgatp, vsatp) pair, i.e. one VMID and guest ASID; switching address spaces
# switches banks instead of flushing.  A full context number is bank * TLB_CONTEXTS + context.
TLB_BANKS = 8
TLB_ALL_CONTEXTS = TLB_BANKS * TLB_CONTEXTS
# TLB_FILLED's bits of the contexts an address-space fence concerns: all but each bank's CTX_M
NON_M_CONTEXTS = sum(0xFE << (TLB_CONTEXTS * bank) for bank in range(TLB_BANKS)) - (1 << 64)
BANK_IS_FREE = 0
BANK_IS_HS = 1
BANK_IS_VS = 2
# Tags are page addresses.  A tag with TLB_SLOW set still names its page for the slow path
# (which skips the walk) but never equals ``vaddr & (PAGE_MASK | (size - 1))``, the fast
# path's key, because that mask clears bit 3; TLB_INVALID is the slow tag of page 0.
TLB_SLOW = 8
TLB_INVALID = TLB_SLOW
# Dirty logging write-protects a valid write tag by setting this bit (never in the fast path's
# key either): the next store to the page misses the fast path, and ``tlb_lookup`` marks the
# page dirty and clears the bit without a walk (and without counting a TLB miss).
TLB_DIRTY_PROTECT = 16

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = -PAGE_SIZE

# ---- decode cache ------------------------------------------------------------------------
# A flat int64 array, DC_FIELDS slots per entry: the fields are stored unpacked because a load
# is cheaper than the shifts and masks of unpacking, and the flat layout indexes with a shift.
# 2^18 entries cover 512 KiB of code: with 2^16 (128 KiB) Linux's boot decoded 5.9 M times,
# its hot code evicting itself
DECODE_CACHE_ENTRIES = 1 << 18
DECODE_CACHE_MASK = DECODE_CACHE_ENTRIES - 1
DC_TAG = 0  # host offset of the instruction, or -1 (or -2: straddles a page, never cached)
DC_OP = 1
DC_RD = 2
DC_RS1 = 3
DC_RS2 = 4
DC_IMM = 5
DC_LENGTH = 6
DC_BITS = 7  # the raw instruction (for mtval and traces)
DC_FIELDS = 8
DC_SHIFT = 3

PAGE_FLAG_CODE = 1
PAGE_FLAG_WATCH = 2
# the translating tier (rvh/tier) has blocks installed from this page: a store over one of its
# decoded instructions moves M_CODE_WRITES (only here: elsewhere nothing is stale)
PAGE_FLAG_TRANSLATED = 4
# a decoded instruction of a page with blocks left the decode cache (another instruction took
# its entry, the cache being direct-mapped): which bytes the page's blocks hold is no longer
# known there, so any store to the page moves M_CODE_WRITES.  Dropping the blocks at the
# eviction instead kept Linux's hot code 512 KiB apart (blake2s and its neighbours) dropping
# each other's blocks: a fifth of its boot interpreted
PAGE_FLAG_UNTRACKED = 8
PAGE_FLAGS_OF_THE_TIER = PAGE_FLAG_TRANSLATED | PAGE_FLAG_UNTRACKED

"""The SBI calling convention's numbers: extension ids, function ids, error codes (SBI spec v2.0).

An SBI call is ``ecall`` from S (or VS) mode with a7 = extension id (EID), a6 = function id
(FID) and arguments in a0..a5; the firmware returns an error code in a0 and a value in a1
(chapter 3, "Binary Encoding").  The built-in SBI (:mod:`rvh.sbi.firmware`), the hypervisor's
virtual SBI and the guests' call helpers all take their numbers from here (the C side through
the header :mod:`rvh.isa.cheader` generates), so no number is typed twice.
"""

from __future__ import annotations

from enum import IntEnum


class Extension(IntEnum):
    """Extension ids (a7).  The named extensions' ids spell their name in ASCII."""

    # Legacy extensions (chapter 5, SBI v0.1): the EID is the function
    LEGACY_SET_TIMER = 0x00
    LEGACY_CONSOLE_PUTCHAR = 0x01
    LEGACY_CONSOLE_GETCHAR = 0x02
    LEGACY_CLEAR_IPI = 0x03
    LEGACY_SEND_IPI = 0x04
    LEGACY_REMOTE_FENCE_I = 0x05
    LEGACY_REMOTE_SFENCE_VMA = 0x06
    LEGACY_REMOTE_SFENCE_VMA_ASID = 0x07
    LEGACY_SHUTDOWN = 0x08
    BASE = 0x10  # chapter 4
    TIME = 0x54494D45  # "TIME", chapter 6
    IPI = 0x735049  # "sPI", chapter 7
    RFENCE = 0x52464E43  # "RFNC", chapter 8
    HSM = 0x48534D  # "HSM", chapter 9
    SRST = 0x53525354  # "SRST", chapter 10
    PMU = 0x504D55  # "PMU", chapter 11
    DBCN = 0x4442434E  # "DBCN", chapter 12
    STA = 0x535441  # "STA", chapter 16: steal-time accounting
    # rvh's paravirtual interface (docs/hypervisor.md, "pv mode"): experimental range, 0x08 then
    # "RVH" in ASCII; only rvh's hypervisor implements it, for VMs it runs with virt=pv
    RVH_PV = 0x08525648
    # rvh's platform I/O extension (docs/virtio.md, "Paravirtual I/O"): 0x08 then "PIO"; the
    # built-in SBI offers it when the machine has pv devices (--drive/--netdev ...,if=pv)
    RVH_PVIO = 0x0850494F


# The last legacy EID: a call with a7 at or below it is a v0.1 call.
LEGACY_LAST = Extension.LEGACY_SHUTDOWN

# Experimental extensions (chapter 3, EID ranges): where rvh's own paravirtual hypercalls live
EXPERIMENTAL_FIRST = 0x08000000
EXPERIMENTAL_LAST = 0x08FFFFFF


class Error(IntEnum):
    """Standard SBI error codes (a0 on return; chapter 3, "Standard SBI Errors")."""

    SUCCESS = 0
    ERR_FAILED = -1
    ERR_NOT_SUPPORTED = -2
    ERR_INVALID_PARAM = -3
    ERR_DENIED = -4
    ERR_INVALID_ADDRESS = -5
    ERR_ALREADY_AVAILABLE = -6
    ERR_ALREADY_STARTED = -7
    ERR_ALREADY_STOPPED = -8
    ERR_NO_SHMEM = -9


class BaseFunction(IntEnum):
    """BASE extension functions (chapter 4)."""

    GET_SPEC_VERSION = 0
    GET_IMPL_ID = 1
    GET_IMPL_VERSION = 2
    PROBE_EXTENSION = 3
    GET_MVENDORID = 4
    GET_MARCHID = 5
    GET_MIMPID = 6


class ImplementationId(IntEnum):
    """SBI implementation ids (4.9); rvh's own is not a registered one."""

    BBL = 0
    OPENSBI = 1
    XVISOR = 2
    KVM = 3
    RUSTSBI = 4
    DIOSIX = 5
    COFFER = 6
    XEN = 7
    POLARFIRE_HSS = 8
    RVH = 0x7276  # "rv": the built-in SBI (rvh/sbi)
    RVH_HYPERVISOR = 0x7268  # "rh": the SBI rvh's hypervisor gives its VMs (firmware/hyp)


# sbi_get_spec_version: major in bits 30:24, minor in bits 23:0 (4.1)
SPEC_VERSION_MAJOR_SHIFT = 24
SPEC_VERSION_MAJOR_MASK = 0x7F << SPEC_VERSION_MAJOR_SHIFT
SPEC_VERSION_MINOR_MASK = 0xFFFFFF


class TimeFunction(IntEnum):
    SET_TIMER = 0


class IpiFunction(IntEnum):
    SEND_IPI = 0


class RfenceFunction(IntEnum):
    """RFENCE functions (chapter 8); the HFENCE ones need the H extension."""

    REMOTE_FENCE_I = 0
    REMOTE_SFENCE_VMA = 1
    REMOTE_SFENCE_VMA_ASID = 2
    REMOTE_HFENCE_GVMA_VMID = 3
    REMOTE_HFENCE_GVMA = 4
    REMOTE_HFENCE_VVMA_ASID = 5
    REMOTE_HFENCE_VVMA = 6


class HsmFunction(IntEnum):
    """Hart state management functions (chapter 9)."""

    HART_START = 0
    HART_STOP = 1
    HART_GET_STATUS = 2
    HART_SUSPEND = 3


class HsmState(IntEnum):
    """Hart states that hart_get_status returns (9.1, table 1)."""

    STARTED = 0
    STOPPED = 1
    START_PENDING = 2
    STOP_PENDING = 3
    SUSPENDED = 4
    SUSPEND_PENDING = 5
    RESUME_PENDING = 6


class HsmSuspendType(IntEnum):
    """hart_suspend types (9.4); 0x80000000 and up do not return to the caller."""

    RETENTIVE = 0x00000000
    NON_RETENTIVE = 0x80000000


class SrstFunction(IntEnum):
    SYSTEM_RESET = 0


class SrstType(IntEnum):
    """system_reset types (10.1); 0xF0000000 and up are vendor-specific, the rest reserved."""

    SHUTDOWN = 0
    COLD_REBOOT = 1
    WARM_REBOOT = 2


class SrstReason(IntEnum):
    """system_reset reasons (10.1); 0xF0000000 and up are vendor-specific, the rest reserved."""

    NONE = 0
    SYSTEM_FAILURE = 1


SRST_VENDOR_FIRST = 0xF0000000  # first vendor-specific reset type and reason


class PmuFunction(IntEnum):
    """Performance monitoring unit functions (chapter 11)."""

    NUM_COUNTERS = 0
    COUNTER_GET_INFO = 1
    COUNTER_CONFIG_MATCHING = 2
    COUNTER_START = 3
    COUNTER_STOP = 4
    COUNTER_FW_READ = 5
    COUNTER_FW_READ_HI = 6
    SNAPSHOT_SET_SHMEM = 7


# counter_config_matching's config_flags (11.7), counter_start's (11.8), counter_stop's (11.9)
PMU_CONFIG_SKIP_MATCH = 1 << 0
PMU_CONFIG_CLEAR_VALUE = 1 << 1
PMU_CONFIG_AUTO_START = 1 << 2
PMU_START_SET_INIT_VALUE = 1 << 0
PMU_STOP_RESET = 1 << 0
# hardware general events (event type 0 in event_idx[19:16], 11.1): event_idx is the code
PMU_EVENT_CPU_CYCLES = 1
PMU_EVENT_INSTRUCTIONS = 2
# counter_get_info's value (11.6): CSR number in [11:0], width - 1 in [17:12], firmware in [63]
PMU_INFO_WIDTH_SHIFT = 12


class DbcnFunction(IntEnum):
    """Debug console functions (chapter 12)."""

    CONSOLE_WRITE = 0
    CONSOLE_READ = 1
    CONSOLE_WRITE_BYTE = 2


class StaFunction(IntEnum):
    """Steal-time accounting functions (chapter 16)."""

    SET_SHMEM = 0


class RvhPvFunction(IntEnum):
    """Functions of rvh's paravirtual extension (``Extension.RVH_PV``; docs/hypervisor.md).

    A pv guest's kernel runs in U-mode like a trap-mode guest's, but calls these instead of
    executing privileged instructions that would trap and be emulated one at a time."""

    # a0 = guest-physical address of a 4 KiB page (0: give it up), a1 = the virtual address the
    # guest's kernel sees it at: the hypervisor keeps the virtual S CSRs there (RvhPvShared)
    SET_SHARED_PAGE = 0
    # sret: the page's sepc and sstatus (SPP, SPIE) are taken, a6 and a7 come back from the
    # page's ret_a6 and ret_a7 words; does not return to the caller
    SYNC_AND_RETURN = 1
    # the guest changed sstatus (SIE, SUM, MXR), sie or sip in the page: the hypervisor looks
    # again (a pending interrupt it now enables is taken at once, as after a csrs)
    SYNC = 2
    SET_SATP = 3  # a0 = the new satp (WARL as the CSR: an unsupported mode leaves it)
    SFENCE_VMA = 4  # a0 = address, a1 = asid, a2 = flags (RVH_PV_FENCE_*)
    # a0 = guest-physical address of an array of {va, pte guest-physical address, new value}
    # (at most RVH_PV_MMU_BATCH_MAX), a1 = its length: each value is written to its PTE and,
    # when it is a leaf mapping only the VM's own RAM and the guest's current table maps va
    # through that PTE, entered in the shadow table at once (no shadow-fill fault for va);
    # a1 on return = how many were entered.  The guest may also write its PTEs itself
    MMU_UPDATE = 5
    WFI = 6  # wait for an interrupt, as wfi


class RvhPvShared(IntEnum):
    """Byte offsets of the words of the pv shared page (one per vCPU, 4 KiB, 4 KiB aligned).

    The virtual CSRs while the page is registered: the guest reads and writes them with loads
    and stores; after changing sstatus.SIE/SUM/MXR, sie or sip it calls SYNC.  satp is
    read-only here (SET_SATP changes it).  On a trap the hypervisor writes scause, sepc, stval
    and sstatus (SPP, SPIE, SIE = 0) as the hart would, saves the guest's t0 in ``trap_t0``,
    puts the page's guest-virtual address in t0 and jumps to ``stvec``.  ``guest_scratch``
    words are the guest's own (the trap entry needs them before it has a stack)."""

    SSTATUS = 0x00
    SIE = 0x08
    SIP = 0x10
    STVEC = 0x18
    SSCRATCH = 0x20
    SEPC = 0x28
    SCAUSE = 0x30
    STVAL = 0x38
    SATP = 0x40
    TRAP_T0 = 0x48
    RET_A6 = 0x50
    RET_A7 = 0x58
    GUEST_SCRATCH0 = 0x60
    GUEST_SCRATCH1 = 0x68


RVH_PV_SHARED_SIZE = 0x70  # bytes of the page in use (the rest is reserved, zero)
RVH_PV_MMU_BATCH_MAX = 64  # entries of one MMU_UPDATE call
RVH_PV_MMU_ENTRY_SIZE = 24  # {uint64 va, uint64 pte guest-physical address, uint64 value}
RVH_PV_FENCE_ALL_ADDRESSES = 1  # SFENCE_VMA flags: ignore a0 (sfence.vma with rs1 = x0)
RVH_PV_FENCE_ALL_ASIDS = 2  # ignore a1 (rs2 = x0)


class RvhPvioFunction(IntEnum):
    """Functions of rvh's platform I/O extension (``Extension.RVH_PVIO``; docs/virtio.md).

    Block and network requests go through rings in guest memory (``RvhPvioRing``), one ring
    per queue; ``NOTIFY`` tells the platform a batch is posted, and the platform raises the
    device's PLIC source (``PVIO_IRQ_BASE`` + device) when it has posted responses."""

    # a0 = device index, a1 = guest-physical address of an RvhPvioInfo record it fills;
    # a1 on return = the number of pv devices.  ERR_INVALID_PARAM past the last device
    DEVICE_INFO = 0
    # a0 = device, a1 = queue, a2 = guest-physical address of the ring page (4 KiB aligned, in
    # RAM; 0 detaches).  Attaching resets the ring's indices to the ring's own req_prod and
    # rsp_prod (which the driver zeroes first); detaching drops what is in flight
    SET_RING = 1
    # a0 = device, a1 = queue: requests were posted (one call per batch)
    NOTIFY = 2


class RvhPvioInfo(IntEnum):
    """Byte offsets of the device record DEVICE_INFO writes (RVH_PVIO_INFO_SIZE bytes)."""

    TYPE = 0x00  # u32: RvhPvioType
    IRQ = 0x04  # u32: the PLIC source of the device's completion interrupt
    CAPACITY = 0x08  # u64: blk: 512-byte sectors
    MAC = 0x10  # 6 bytes: net: the MAC address
    READONLY = 0x16  # u8: blk: 1 when writes are refused
    QUEUES = 0x18  # u32: blk 1 (requests), net 2 (0 transmit, 1 receive)
    MAX_LENGTH = 0x1C  # u32: the largest buffer of one request


class RvhPvioType(IntEnum):
    BLK = 1
    NET = 2


class RvhPvioRing(IntEnum):
    """Byte offsets in a ring page: a header, then RVH_PVIO_RING_SLOTS request slots of
    RVH_PVIO_SLOT_SIZE bytes; request n (a free-running 32-bit count) is in slot
    n % RVH_PVIO_RING_SLOTS, and its response overwrites it in place (requests complete in
    the order they were posted)."""

    REQ_PROD = 0x00  # u32, driver: requests posted
    RSP_PROD = 0x04  # u32, platform: responses posted
    REQ_CONS = 0x08  # u32, platform: requests taken
    ERROR = 0x0C  # u32, platform: nonzero once the ring broke a rule (RvhPvioRingError)
    FIRST_SLOT = 0x40


class RvhPvioSlot(IntEnum):
    """Byte offsets in a request slot."""

    ID = 0x00  # u64, driver: its tag, left as it is
    SECTOR = 0x08  # u64, blk: the first 512-byte sector
    ADDRESS = 0x10  # u64: guest-physical address of the buffer
    LENGTH = 0x18  # u32: the buffer's bytes; in the response, the bytes the platform wrote
    OP = 0x1C  # u8: RvhPvioOp
    STATUS = 0x1D  # u8, platform: RvhPvioStatus


class RvhPvioOp(IntEnum):
    READ = 1  # blk: sectors into the buffer
    WRITE = 2  # blk: the buffer onto sectors
    FLUSH = 3  # blk: complete once every write before it is on stable storage
    TRANSMIT = 4  # net queue 0: send the frame in the buffer
    RECEIVE = 5  # net queue 1: a buffer for a frame to come


class RvhPvioStatus(IntEnum):
    OK = 0
    IO_ERROR = 1  # the host failed the operation
    UNSUPPORTED = 2  # an op this device or queue does not have
    BAD_ADDRESS = 3  # the buffer is not all RAM
    BAD_LENGTH = 4  # blk: not whole sectors, beyond the disk or above MAX_LENGTH;
    #                 net: a frame outside 14..1514 bytes, a receive buffer too small for it
    READ_ONLY = 5  # blk: a write to a read-only disk
    PENDING = 0xFF  # what a driver writes before posting (never a response)


class RvhPvioRingError(IntEnum):
    """The ring's ERROR word: the platform stops serving the ring until it is attached again."""

    NONE = 0
    INDEX = 1  # req_prod ran more than a ring ahead of rsp_prod (or behind it)


RVH_PVIO_INFO_SIZE = 0x20
RVH_PVIO_RING_SLOTS = 64
RVH_PVIO_SLOT_SIZE = 0x20
RVH_PVIO_RING_BYTES = 0x40 + 64 * 0x20  # the header and the slots: within the 4 KiB page
RVH_PVIO_BLK_MAX_LENGTH = 0x40000  # 256 KiB per block request
RVH_PVIO_NET_MAX_LENGTH = 2048  # a buffer holds one frame (at most 1514 bytes)
RVH_PVIO_MAX_DEVICES = 8

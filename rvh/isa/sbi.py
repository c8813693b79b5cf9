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
    DBCN = 0x4442434E  # "DBCN", chapter 12
    STA = 0x535441  # "STA", chapter 16: steal-time accounting


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


class DbcnFunction(IntEnum):
    """Debug console functions (chapter 12)."""

    CONSOLE_WRITE = 0
    CONSOLE_READ = 1
    CONSOLE_WRITE_BYTE = 2


class StaFunction(IntEnum):
    """Steal-time accounting functions (chapter 16)."""

    SET_SHMEM = 0

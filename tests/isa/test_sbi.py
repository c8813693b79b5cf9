"""rvh.isa.sbi against the SBI specification v2.0: extension ids, function ids, error codes."""

import pytest

from rvh.isa import sbi
from rvh.isa.sbi import (
    BaseFunction,
    DbcnFunction,
    Error,
    Extension,
    HsmFunction,
    HsmState,
    HsmSuspendType,
    RfenceFunction,
    SrstType,
)


@pytest.mark.parametrize(
    ("extension", "ascii_name"),
    [
        (Extension.TIME, "TIME"),
        (Extension.IPI, "sPI"),
        (Extension.RFENCE, "RFNC"),
        (Extension.HSM, "HSM"),
        (Extension.SRST, "SRST"),
        (Extension.DBCN, "DBCN"),
        (Extension.STA, "STA"),
    ],
)
def test_extension_ids_spell_their_names(extension, ascii_name):
    assert extension.to_bytes((extension.bit_length() + 7) // 8, "big").decode() == ascii_name


def test_legacy_and_base_ids():
    assert Extension.BASE == 0x10
    legacy = [e for e in Extension if e.name.startswith("LEGACY_")]
    assert [int(e) for e in legacy] == list(range(9))
    assert sbi.LEGACY_LAST == 8
    assert (sbi.EXPERIMENTAL_FIRST, sbi.EXPERIMENTAL_LAST) == (0x08000000, 0x08FFFFFF)


def test_error_codes():
    assert [int(e) for e in Error] == [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
    assert Error.ERR_NOT_SUPPORTED == -2
    assert Error.ERR_ALREADY_AVAILABLE == -6


def test_function_ids():
    assert BaseFunction.PROBE_EXTENSION == 3
    assert BaseFunction.GET_MIMPID == 6
    assert RfenceFunction.REMOTE_HFENCE_GVMA_VMID == 3
    assert RfenceFunction.REMOTE_HFENCE_VVMA == 6
    assert (HsmFunction.HART_START, HsmFunction.HART_SUSPEND) == (0, 3)
    assert HsmState.SUSPENDED == 4
    assert HsmSuspendType.NON_RETENTIVE == 0x80000000
    assert SrstType.WARM_REBOOT == 2
    assert DbcnFunction.CONSOLE_WRITE_BYTE == 2


def test_spec_version_layout():
    version = (2 << sbi.SPEC_VERSION_MAJOR_SHIFT) | 0
    major = (version & sbi.SPEC_VERSION_MAJOR_MASK) >> sbi.SPEC_VERSION_MAJOR_SHIFT
    assert (major, version & sbi.SPEC_VERSION_MINOR_MASK) == (2, 0)

"""The built-in SBI (SBI specification v2.0) as an S-mode payload sees it."""

import pytest
from support import needs_toolchain, run_sbi_payload

pytestmark = needs_toolchain

SHUTDOWN = """
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
"""


def sbi(eid, fid=0, *args):
    loads = "".join(f"    li a{i}, {value}\n" for i, value in enumerate(args))
    return f"{loads}    li a7, {eid}\n    li a6, {fid}\n    ecall\n"


def test_base_extension(tmp_path):
    result, _, machine = run_sbi_payload(
        sbi(0x10, 0)
        + "mv s0, a0\nmv s1, a1\n"  # spec version
        + sbi(0x10, 3, 0x54494D45)
        + "mv s2, a1\n"  # probe TIME
        + sbi(0x10, 3, 0x12345)
        + "mv s3, a1\n"  # probe a bogus extension
        + sbi(0x12345, 0)
        + "mv s4, a0\n"  # unknown extension
        + sbi(0x10, 99)
        + "mv s5, a0\n"  # unknown function
        + sbi(0x10, 1)
        + "mv s6, a1\n"  # implementation id
        + "1: j 1b\n",
        tmp_path,
        max_instructions=2000,
    )
    hart = machine.harts[0]
    assert hart.x(8) == 0 and hart.x(9) == 0x0200_0000  # SBI 2.0
    assert hart.x(18) == 1 and hart.x(19) == 0
    assert hart.x(20) == (-2) & (2**64 - 1)  # SBI_ERR_NOT_SUPPORTED
    assert hart.x(21) == (-2) & (2**64 - 1)
    assert hart.x(22) == 0x7276


def test_payload_starts_in_s_mode_with_hartid_and_dtb(tmp_path):
    _, _, machine = run_sbi_payload(
        "mv s0, a0\nmv s1, a1\ncsrr s2, sstatus\n1: j 1b\n", tmp_path, max_instructions=100
    )
    hart = machine.harts[0]
    assert hart.x(8) == 0 and hart.x(9) == machine.fdt_address
    assert int(hart.state[34]) == 1  # S-mode


def test_console_legacy_and_dbcn(tmp_path):
    result, output, _ = run_sbi_payload(
        sbi(0x01, 0, ord("L"))
        + "la t0, text\n"
        + sbi(0x4442434E, 0, 3, 0, 0).replace("li a1, 0", "mv a1, t0")
        + "mv s0, a0\nmv s1, a1\n"
        + sbi(0x4442434E, 2, ord("!"))
        + sbi(0x4442434E, 0, 4, 0x20000000, 0)
        + "mv s2, a0\n"  # not RAM: invalid parameter
        + "bnez s0, 1f\nli t1, 3\nbne s1, t1, 1f\nli t1, -3\nbne s2, t1, 1f\n"
        + SHUTDOWN
        + '1: j 1b\ntext: .ascii "DBC"\n',
        tmp_path,
    )
    assert output == b"LDBC!"
    assert result.status == 0 and result.reason == "SBI shutdown"


def test_shutdown_with_failure_reason(tmp_path):
    result, _, _ = run_sbi_payload(sbi(0x53525354, 0, 0, 1), tmp_path)
    assert result.status == 1


def test_set_timer_raises_the_supervisor_timer_interrupt(tmp_path):
    result, _, machine = run_sbi_payload(
        """
        la t0, handler
        csrw stvec, t0
        li t0, 1 << 5
        csrs sie, t0          # STIE
        csrr a0, time
        addi a0, a0, 500
    """
        + "li a7, 0x54494D45\nli a6, 0\necall\n"
        + """
        csrsi sstatus, 2      # SIE
    1:  wfi
        j 1b
    .balign 4
    handler:
        csrr s0, scause
        csrr s1, time
        li a0, -1             # far future: clears STIP
        li a7, 0x54494D45
        li a6, 0
        ecall
        csrr s2, sip
    """
        + SHUTDOWN,
        tmp_path,
    )
    hart = machine.harts[0]
    assert result.status == 0
    assert hart.x(8) == (1 << 63) | 5
    assert hart.x(18) & (1 << 5) == 0


def test_ipi_to_self(tmp_path):
    result, _, machine = run_sbi_payload(
        """
        la t0, handler
        csrw stvec, t0
        csrsi sie, 2          # SSIE
        csrsi sstatus, 2
    """
        + sbi(0x735049, 0, 1, 0)
        + """
    1:  j 1b
    .balign 4
    handler:
        csrr s0, scause
        csrci sip, 2
    """
        + SHUTDOWN,
        tmp_path,
    )
    assert result.status == 0
    assert machine.harts[0].x(8) == (1 << 63) | 1


def test_hart_start_status_and_stop(tmp_path):
    result, _, machine = run_sbi_payload(
        sbi(0x48534D, 2, 1)
        + "mv s0, a1\n"  # hart 1: STOPPED
        + "la a1, second\nli a2, 0x77\nli a0, 1\nli a7, 0x48534D\nli a6, 0\necall\nmv s1, a0\n"
        + "la t0, flag\n1: ld t1, 0(t0)\nbeqz t1, 1b\n"  # hart 1 runs
        + sbi(0x48534D, 2, 1)
        + "mv s2, a1\n"  # STARTED
        + "la t0, flag\nli t1, 1\nsd t1, 8(t0)\n"  # tell hart 1 to stop
        + "2: "
        + sbi(0x48534D, 2, 1)
        + "beqz a1, 2b\nmv s3, a1\n"  # until STOPPED
        + SHUTDOWN
        + "4: j 4b\n"
        + """
    second:                   # a0 = hartid, a1 = opaque
        la t0, flag
        sd a1, 0(t0)
    3:  ld t1, 8(t0)
        beqz t1, 3b
        li a7, 0x48534D
        li a6, 1              # hart_stop
        ecall
    5:  j 5b
    .balign 8
    flag: .dword 0, 0
    """,
        tmp_path,
        harts=2,
        max_instructions=400_000,
    )
    hart0, hart1 = machine.harts
    assert result.status == 0
    assert hart0.x(8) == 1  # STOPPED before the start
    assert hart0.x(9) == 0  # hart_start succeeded
    assert hart0.x(18) == 0  # STARTED
    assert hart0.x(19) == 1  # STOPPED again
    assert machine.bus.read_u64(machine.elf.symbols["flag"]) == 0x77


@pytest.mark.parametrize("fid", [1, 2])  # sbi_hart_start of a started hart; bad hartid
def test_hsm_errors(tmp_path, fid):
    if fid == 1:
        code = sbi(0x48534D, 0, 0, 0x80200000, 0)  # hart 0 is running
        expected = -6  # SBI_ERR_ALREADY_AVAILABLE
    else:
        code = sbi(0x48534D, 2, 5)  # no hart 5
        expected = -3  # SBI_ERR_INVALID_PARAM
    _, _, machine = run_sbi_payload(code + "1: j 1b\n", tmp_path, max_instructions=100)
    assert machine.harts[0].x(10) == expected & (2**64 - 1)

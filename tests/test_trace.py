"""Traces (rvh/trace.py): the Spike commit log of ``rvh run --trace``, QEMU's state dumps and
reference trace files."""

from __future__ import annotations

import numpy as np
import pytest
from support import GUESTS, needs_toolchain, require_guest

from rvh.cli import main
from rvh.cpu.trace import T_CSR, TRACE_FIELDS
from rvh.isa.disasm import encode
from rvh.trace import (
    StateTrace,
    commit_lines,
    parse_commit_log,
    parse_qemu_log,
    read_reference,
    write_reference,
)


def records(*rows: tuple[int, ...]) -> np.ndarray:
    """Kernel trace records: pc, bits, mode, rd, value, mem address, mem value, mem info,
    CSR written (-1 when the row does not say), its value."""
    table = np.zeros((len(rows), TRACE_FIELDS), dtype=np.int64)
    table[:, T_CSR] = -1
    for i, row in enumerate(rows):
        table[i, : len(row)] = [v - (1 << 64) if v >= 1 << 63 else v for v in row]
    return table.ravel()


def test_commit_lines_in_spikes_format():
    lines = list(
        commit_lines(
            records(
                (0x8000_0000, 0x00000297, 3, 5, 0x8000_0000),  # auipc t0, 0
                (0x8000_0004, encode("c.li", rd=10, imm=0), 3, 10, 0),  # 16-bit bits
                (0x8000_0006, encode("sw", rs1=5, rs2=6, imm=0), 3, -1, 0, 0x8000_1000, 7, 4 | 16),
                (0x8000_000A, encode("ld", rd=7, rs1=5, imm=8), 3, 7, 42, 0x8000_1008, 0, 8),
                (0x8000_000E, 0x00000073, 3, -2 - 11, 0),  # ecall: no tval line
                (0x8000_0100, 0xFFFFFFFF, 1, -2 - 2, 0xFFFFFFFF),  # illegal, with tval
                (0x8000_0104, 0x00000013, 1 | 4, -1, 0),  # nop in VS-mode
            )
        )
    )
    assert lines == [
        "core   0: 3 0x0000000080000000 (0x00000297) x5  0x0000000080000000",
        "core   0: 3 0x0000000080000004 (0x4501) x10 0x0000000000000000",
        "core   0: 3 0x0000000080000006 (0x0062a023) mem 0x0000000080001000 0x00000007",
        "core   0: 3 0x000000008000000a (0x0082b383) x7  0x000000000000002a mem 0x0000000080001008",
        "core   0: exception trap_machine_ecall, epc 0x000000008000000e",
        "core   0: exception trap_illegal_instruction, epc 0x0000000080000100",
        "core   0:           tval 0x00000000ffffffff",
        "core   0: 1v 0x0000000080000104 (0x00000013)",
    ]


def test_atomics_log_the_load_and_the_value_stored():
    amo = encode("amoadd.w", rd=10, rs1=11, rs2=12)
    sc = encode("sc.d", rd=10, rs1=11, rs2=12)
    lines = list(
        commit_lines(
            records(
                (0x1000, amo, 3, 10, 0xFFFF_FFFF, 0x8000_0000, 2, 4 | 16),  # old -1 + 2 = 1
                (0x1004, sc, 3, 10, 0, 0x8000_0000, 5, 8 | 16),  # success: rd = 0
                (0x1008, sc, 3, 10, 1, 0x8000_0000, 5, 8 | 16),  # failure: no store
            )
        )
    )
    assert lines[0].endswith(
        "x10 0x00000000ffffffff mem 0x0000000080000000 mem 0x0000000080000000 0x00000001"
    )
    assert lines[1].endswith("mem 0x0000000080000000 0x0000000000000005")
    assert "mem" not in lines[2]


def test_parse_commit_log_reads_spike_lines_too():
    text = "\n".join(
        [
            "core   0: 0x0000000080000000 (0x00000297) auipc   t0, 0x0",  # -l line: skipped
            "core   0: 3 0x0000000080000000 (0x00000297) x5  0x0000000080000000",
            "core   0: 3 0x0000000080000004 (0x34029073) c832_mscratch 0x0000000080000000",
            "core   0: exception trap_illegal_instruction, epc 0x0000000080000008",
            "core   0:           tval 0x0000000000000000",
            "core   0: 3 0x000000008000004a (0x00b2a023) mem 0x0000000080001000 0x00000001",
        ]
    )
    commits = parse_commit_log(text)
    assert [c.pc for c in commits] == [0x8000_0000, 0x8000_0004, 0x8000_0008, 0x8000_004A]
    assert commits[0].writes == {"x5": 0x8000_0000}
    assert commits[1].writes == {"c832_mscratch": 0x8000_0000}
    assert commits[2].exception == "trap_illegal_instruction" and commits[2].tval == 0
    assert commits[3].stores == [(0x8000_1000, 1)]


def _qemu_record(pc: int, x5: int, h: bool) -> str:
    lines = [" V      =   0"] if h else []
    lines.append(f" pc       {pc:016x}")
    for name in ("mhartid", "mstatus", "mip"):
        lines.append(f" {name:<8} {0xA00000000 if name == 'mstatus' else 0:016x}")
    regs = [0] * 32
    regs[5] = x5
    for row in range(8):
        lines.append(
            "".join(
                f" x{4 * row + k}/{'r':<4} {regs[4 * row + k]:016x}".replace("/r   ", "/reg ")
                for k in range(4)
            )
        )
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("h", [False, True])
def test_parse_qemu_log(h):
    text = "".join(_qemu_record(0x1000 + 4 * i, i, h) for i in range(5))
    trace = parse_qemu_log(text)
    assert trace.fields[: 1 + h] == (["V", "pc"] if h else ["pc"])
    assert trace.fields[-32:] == [f"x{i}" for i in range(32)]
    assert len(trace) == 5
    assert trace.state(3)["pc"] == 0x100C and trace.state(3)["x5"] == 3
    assert trace.state(0)["mstatus"] == 0xA00000000
    # a log cut short in the middle of a record keeps the complete records
    assert len(parse_qemu_log(text[: len(text) - 40])) == 4


@pytest.mark.parametrize("suffix", [".txt", ".gz"])
def test_reference_files_round_trip(tmp_path, suffix):
    rows = np.array([[0x1000, 0, 1 << 63], [0x1004, 5, 1 << 63], [0x1008, 5, 0]], dtype=np.uint64)
    trace = StateTrace(["pc", "x5", "mcause"], rows, {"source": "test"}, exit_status=3)
    path = tmp_path / f"ref{suffix}"
    write_reference(trace, path)
    again = read_reference(path)
    assert again.fields == trace.fields and again.exit_status == 3
    assert again.meta == {"source": "test"}
    assert (again.rows == rows).all()


def test_untraced_machines_have_no_buffer():
    """Tracing off: no buffer, so the kernel runs its untraced specialization."""
    from rvh.machine import Machine

    machine = Machine(output=lambda data: None)
    assert all(hart.trace is None for hart in machine.harts)
    assert machine.commit_log is None


@needs_toolchain
def test_rvh_run_trace_writes_the_commit_log(tmp_path, capsys):
    elf = require_guest(GUESTS / "isa" / "mtraps.elf")
    log = tmp_path / "mtraps.log"
    assert main(["run", str(elf), "--serial", "null", "--trace", str(log)]) == 0
    commits = parse_commit_log(log.read_text())
    first = log.read_text().splitlines()[0]
    assert first == "core   0: 3 0x0000000000001000 (0x00000297) x5  0x0000000000001000"
    retired = [c for c in commits if c.exception is None]
    traps = [c for c in commits if c.exception is not None]
    assert len(retired) > 4000 and traps
    assert {"trap_machine_ecall", "trap_breakpoint", "trap_illegal_instruction"} <= {
        c.exception for c in traps
    }
    # the last instruction is the store to the test device that ends the run
    assert retired[-1].stores and retired[-1].stores[0][0] == 0x10_0000


def test_csr_writes_interrupts_and_fetch_faults_in_the_log(tmp_path):
    """A CSR write shows as Spike's c<number>_<name>; a taken interrupt and a fetch fault
    are exception lines."""
    from support import build_elf

    from rvh.config import MachineConfig
    from rvh.machine import Machine

    elf = build_elf(
        """
        la t0, handler
        csrw mtvec, t0
        li t0, 8
        csrw mie, t0             # MSIE
        csrsi mstatus, 8         # MIE
        li t1, 0x2000000
        li t2, 1
        sw t2, 0(t1)             # msip: a software interrupt
        nop
    .balign 4
    handler:
        li t1, 0x2000000
        sw zero, 0(t1)
        csrci mstatus, 8
        la t0, finish
        csrw mtvec, t0
        li t0, 0x800
        jr t0                    # nothing there: instruction access fault
    .balign 4
    finish:
        li t0, 0x100000
        li t1, 0x5555
        sw t1, 0(t0)
        """,
        tmp_path / "events.elf",
    )
    log = tmp_path / "events.log"
    machine = Machine(MachineConfig(trace_path=str(log)), output=lambda data: None)
    machine.load(str(elf))
    result = machine.run_sync()
    assert (result.status, result.reason) == (0, "test device: pass")
    text = log.read_text()
    assert " c773_mtvec 0x" in text  # csrw mtvec (0x305 = 773)
    assert " c772_mie 0x0000000000000008" in text
    assert "exception interrupt_machine_software, epc 0x" in text
    assert "exception trap_instruction_access_fault, epc 0x0000000000000800" in text
    assert "c0_" not in text

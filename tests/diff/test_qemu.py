"""The reference (rvh/diff/qemu.py): QEMU's dumps, -icount's replays, the reference tracer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from support import GUESTS, ROOT, build_elf, require_guest

from rvh.diff import QemuStream, diff_elf, qemu_available, remove_io_replays
from rvh.isa.disasm import encode
from rvh.trace import StateTrace, read_reference

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")


def guest(name: str):
    elf = GUESTS / "isa" / f"{name}.elf"
    return require_guest(elf)


def test_replayed_dumps_are_removed_but_not_jumps_to_self():
    load = encode("lw", rd=5, rs1=6, imm=0)  # a device access, replayed
    add = encode("addi", rd=5, rs1=5, imm=1)  # the icount budget ran out before it
    jump_to_self = encode("jal", rd=0, imm=0)  # waits for an interrupt: really repeats
    code = {0x100: load, 0x104: add, 0x200: jump_to_self}
    rows = np.array(
        [[0x100, 1], [0x100, 1], [0x104, 2], [0x104, 2], [0x200, 3], [0x200, 3], [0x200, 3]],
        dtype=np.uint64,
    )
    trace, removed = remove_io_replays(StateTrace(["pc", "x5"], rows), code.get)
    assert removed == 2
    assert trace.rows[:, 0].tolist() == [0x100, 0x104, 0x200, 0x200, 0x200]


@pytest.mark.qemu
@needs_qemu
def test_reference_tracer_tool(tmp_path):
    out = tmp_path / "rv64c.ref"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "qemu_trace.py"),
            str(guest("rv64c")),
            "-o",
            str(out),
            "--cpu",
            "rv64,h=off",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    trace = read_reference(out)
    assert "V" not in trace.fields and trace.state(0)["pc"] == 0x1000
    assert diff_elf(guest("rv64c"), trace, hypervisor=False).ok


class _Silent(Exception):
    pass


@pytest.mark.qemu
@needs_qemu
def test_dumps_reach_the_comparison_while_qemu_spins_silently(tmp_path):
    # an ecall with mtvec = 0 (reset) traps into a fetch-fault loop that QEMU's -d cpu never
    # shows (no block executes): the dumps before it must be published all the same, the last
    # one too, and a wait for the next one ends in the comparison's on_wait hook
    elf = build_elf("ecall", tmp_path / "loop.elf")
    with QemuStream(elf, hypervisor=False, timeout=60) as stream:
        assert stream.available(6)
        pc = stream.fields.index("pc")
        assert [int(stream.row(i)[pc]) for i in range(7)][-2:] == [0x1014, 0x8000_0000]

        def silent(index: int) -> None:
            raise _Silent(index)

        stream.on_wait = silent
        with pytest.raises(_Silent) as waited:
            stream.available(7)
        assert waited.value.args == (7,)
        assert stream.exit_status is None and not stream.truncated  # QEMU still spinning

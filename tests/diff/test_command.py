"""``rvh diff`` (rvh/diff/command.py): the report, and what a user gets when things go wrong:
one line and the right status, hints for guests QEMU's virt board does not run as rvh does,
progress and an end to a trap loop, SIGTERM handled as Ctrl-C is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import GUESTS, ROOT, build_elf

from rvh.cli import main
from rvh.diff import qemu_available
from rvh.errors import EXIT_EMULATOR_ERROR, EXIT_USAGE
from rvh.trace import read_reference

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")
HINT = "did you mean an S-mode payload? rvh diff runs the ELF bare, as M-mode"


def built(*parts: str) -> Path:
    elf = GUESTS.joinpath(*parts)
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    return elf


def guest(name: str) -> Path:
    return built("isa", f"{name}.elf")


def rvh_diff(*args: str, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``rvh diff`` in a process of its own, its temporary files in ``tmp``."""
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", "diff", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp)},
    )


def processes_naming(text: str) -> list[int]:
    """The processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.qemu
@needs_qemu
def test_rvh_diff_command(tmp_path, capsys):
    elf = guest("rv64m")
    saved = tmp_path / "rv64m.ref.gz"
    assert main(["diff", str(elf), "--save-reference", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "instruction boundaries agree with QEMU 7.2" in out
    assert read_reference(saved).exit_status == 0
    # again from the saved reference, without QEMU
    assert main(["diff", str(elf), "--reference", str(saved)]) == 0
    # a reference of another program is refused
    assert main(["diff", str(guest("rv64i")), "--reference", str(saved)]) != 0
    assert "another build" in capsys.readouterr().err


def test_save_reference_to_a_bad_path_is_a_usage_error(tmp_path, capsys):
    # checked before QEMU starts: a bad command line, status 2, one line
    status = main(["diff", str(guest("rv64m")), "--save-reference", str(tmp_path / "no" / "x")])
    assert status == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == f"rvh: --save-reference {tmp_path / 'no' / 'x'}: cannot write there\n"
    assert main(["diff", str(guest("rv64m")), "--reference", str(tmp_path / "none")]) == 2
    assert "cannot read (No such file or directory)" in capsys.readouterr().err


@pytest.mark.qemu
@needs_qemu
def test_an_htif_guest_gets_a_hint(capsys):
    elf = built("htif", "htif_hello.elf")
    assert main(["diff", str(elf)]) == 1  # the runs part at the first tohost access
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"rvh diff: {elf} has a tohost symbol (HTIF), which QEMU's virt machine does not have "
        "(its -machine spike does): expect the runs to part at the first HTIF access"
    ]


@pytest.mark.qemu
@needs_qemu
def test_an_s_mode_payload_gets_a_hint(capsys):
    # QEMU's -bios none starts at the RAM base, rvh's boot ROM at the ELF's entry
    elf = built("smode", "hello.elf")
    assert main(["diff", str(elf)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"rvh diff: {elf} starts at 0x80200000, QEMU's -bios none at 0x80000000: {HINT}"
    ]
    assert "first divergence at instruction 4: 0x1010: ld t0, 24(t0)" in captured.out


@pytest.mark.qemu
@needs_qemu
def test_a_trap_loop_ends_rvh_diff_in_one_line(tmp_path):
    # an ecall with mtvec = 0: fetch faults for ever, which QEMU runs through printing nothing
    elf = build_elf("ecall", tmp_path / "loop.elf")
    done = rvh_diff(str(elf), tmp=tmp_path)
    assert done.returncode == EXIT_EMULATOR_ERROR, done.stderr
    assert done.stderr.splitlines() == [
        "rvh: 10,000 traps in a row and no instruction retired (instruction access fault at "
        f"0x0), on rvh and on QEMU alike, after 7 instruction boundaries agreed: {HINT}"
    ]
    assert done.stdout == ""
    assert not list(tmp_path.glob("rvh-qemu-*")) and not processes_naming(str(tmp_path))


@pytest.mark.qemu
@needs_qemu
def test_max_insns_ends_a_trap_loop(tmp_path, capsys):
    elf = build_elf("ecall", tmp_path / "loop.elf")
    assert main(["diff", str(elf), "--max-insns", "300"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        "rvh diff: QEMU stopped after 7 instructions (--max-insns)",
        f"rvh diff: then 293 traps in a row and no instruction retired: {HINT}",
        "rvh diff: 7 instruction boundaries agree with QEMU 7.2 (" + out[2].split("(", 1)[1],
    ]


@pytest.mark.qemu
@needs_qemu
def test_sigterm_ends_rvh_diff_like_ctrl_c(tmp_path):
    # a message and status 143, QEMU stopped and its temporary folder removed
    elf = built("bench", "intmem.elf")  # long: 250 M instructions
    process = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "diff", str(elf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        deadline = time.monotonic() + 120
        while not processes_naming(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.1)  # until QEMU runs
        assert processes_naming(str(tmp_path)), "QEMU did not start"
        assert list(tmp_path.glob("rvh-qemu-*"))
        time.sleep(1)  # the comparison under way
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.splitlines()[-1] == "rvh: terminated" and "Traceback" not in err
    assert not list(tmp_path.glob("rvh-qemu-*"))
    assert not processes_naming(str(tmp_path))

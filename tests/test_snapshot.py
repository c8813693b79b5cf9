"""VM files in process: the format's checks (truncation, bit flips, foreign and newer files,
changed disks), fuzzed, and the state a restore puts back."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import GUESTS, RAM_BASE, ROOT, assemble, require_guest

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.errors import EXIT_LOAD_ERROR
from rvh.machine import Machine
from rvh.snapshot import (
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    SnapshotError,
    read_vm_file,
    restore_machine,
)

SMALL = 2 << 20  # a small machine keeps the fuzzed files small


def saved_machine(path: Path, save_at: int, drives: list[str] | None = None) -> Machine:
    """Run hello.elf on a 2 MiB machine to ``save_at`` and save it to ``path``."""
    output = bytearray()
    machine = Machine(MachineConfig(memory=SMALL, drives=drives or []), output=output.extend)
    machine.load(str(require_guest(GUESTS / "hello" / "hello.elf")))
    machine.save_path = str(path)
    machine.save_at = save_at
    result = machine.run_sync()
    assert (result.status, machine.steps) == (0, save_at), result.reason
    return machine


@pytest.fixture(scope="module")
def vm_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vm") / "hello.rvh"
    saved_machine(path, 300)
    return path


def prefix_length(path: Path) -> int:
    """Bytes before the RAM section's pages (the metadata sections)."""
    return os.path.getsize(path) - (SMALL + 0x10000)


def test_restore_puts_back_every_array(tmp_path):
    path = tmp_path / "a.rvh"
    original = saved_machine(path, 300)
    restored = restore_machine(read_vm_file(str(path)), output=lambda data: None)
    assert np.array_equal(restored.harts[0].state, original.harts[0].state)
    assert np.array_equal(restored.harts[0].tlb, original.harts[0].tlb)
    assert np.array_equal(restored.machine, original.machine)
    assert np.array_equal(restored.bus.memory, original.bus.memory)
    assert np.array_equal(restored.bus.decode_cache, original.bus.decode_cache)
    assert np.array_equal(restored.bus.page_flags, original.bus.page_flags)
    assert restored.exit_counts == original.exit_counts
    assert restored.uart.save_state() == original.uart.save_state()
    assert restored.plic.save_state() == original.plic.save_state()
    assert restored.steps == 300


def test_ram_is_mapped_copy_on_write(tmp_path):
    # the guest's writes land in the process's private copy, never in the file
    path = tmp_path / "cow.rvh"
    saved_machine(path, 300)
    before = path.read_bytes()
    output = bytearray()
    vm = read_vm_file(str(path))
    restored = restore_machine(vm, output=output.extend)
    page = SMALL // 2 // L.PAGE_SIZE  # a page the guest does not use: zero in the file
    assert page not in vm.pages.tolist()
    restored.bus.memory[page * L.PAGE_SIZE : (page + 1) * L.PAGE_SIZE] = 0x5A
    result = restored.run_sync()
    assert result.status == 0 and output.startswith(b"hartid=0")
    assert path.read_bytes() == before


def test_zero_pages_are_holes(tmp_path):
    path = tmp_path / "sparse.rvh"
    saved_machine(path, 300)
    vm = read_vm_file(str(path))
    assert 0 < len(vm.pages) < 16  # hello, its stack and the device tree
    assert vm.disk_bytes < 256 << 10 < vm.file_bytes


def expect_refused(path: Path, message: str | None = None) -> str:
    with pytest.raises(SnapshotError) as refused:
        read_vm_file(str(path))
    text = refused.value.message
    assert "\n" not in text and text.startswith(f"{path}: ")
    assert refused.value.status == EXIT_LOAD_ERROR
    if message is not None:
        assert message in text, text
    return text


def test_foreign_and_newer_files(tmp_path, vm_file):
    elf = tmp_path / "an.elf"
    shutil.copyfile(GUESTS / "hello" / "hello.elf", elf)
    expect_refused(elf, "not an rvh VM file")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    expect_refused(empty, "not an rvh VM file")
    newer = tmp_path / "newer.rvh"
    shutil.copyfile(vm_file, newer)
    head = HEADER.pack(MAGIC, FORMAT_VERSION + 1, 0, 9)
    with open(newer, "r+b") as file:
        file.write(head + struct.pack("<I", zlib.crc32(head)))
    expect_refused(newer, f"format {FORMAT_VERSION + 1} is newer than this rvh reads")


def test_a_changed_disk_is_refused_and_left_alone(tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(range(256)) * 256)
    path = tmp_path / "disk.rvh"
    saved_machine(path, 300, drives=[f"file={disk}"])
    restore_machine(read_vm_file(str(path)), output=lambda data: None).run_sync()
    changed = bytearray(disk.read_bytes())
    changed[1000] ^= 1
    disk.write_bytes(changed)
    with pytest.raises(SnapshotError, match="changed since the VM was saved"):
        restore_machine(read_vm_file(str(path)), output=lambda data: None)
    assert disk.read_bytes() == changed
    disk.unlink()
    with pytest.raises(SnapshotError, match="cannot open"):
        restore_machine(read_vm_file(str(path)), output=lambda data: None)


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.data())
def test_every_truncation_is_refused(tmp_path_factory, vm_file, data):
    size = os.path.getsize(vm_file)
    length = data.draw(
        st.one_of(st.integers(0, prefix_length(vm_file) + 16), st.integers(0, size - 1))
    )
    cut = tmp_path_factory.mktemp("cut") / "cut.rvh"
    shutil.copyfile(vm_file, cut)
    os.truncate(cut, length)
    expect_refused(cut)


@FUZZ
@given(data=st.data())
def test_every_bit_flip_is_refused(vm_file, data):
    size = os.path.getsize(vm_file)
    offset = data.draw(st.one_of(st.integers(0, prefix_length(vm_file)), st.integers(0, size - 1)))
    bit = data.draw(st.integers(0, 7))
    with open(vm_file, "r+b") as file:
        file.seek(offset)
        original = file.read(1)
        file.seek(offset)
        file.write(bytes([original[0] ^ (1 << bit)]))
    try:
        expect_refused(vm_file)
    finally:
        with open(vm_file, "r+b") as file:
            file.seek(offset)
            file.write(original)


@FUZZ
@given(data=st.data())
def test_garbage_anywhere_never_gives_a_traceback(vm_file, data):
    size = os.path.getsize(vm_file)
    offset = data.draw(st.integers(0, prefix_length(vm_file)))
    garbage = data.draw(st.binary(min_size=1, max_size=64))
    with open(vm_file, "r+b") as file:
        file.seek(offset)
        original = file.read(len(garbage))
        file.seek(offset)
        file.write(garbage)
    try:
        if garbage[: len(original)] != original:
            expect_refused(vm_file)
    finally:
        with open(vm_file, "r+b") as file:
            file.seek(offset)
            file.write(original)
            file.truncate(size)


def test_the_command_line_reports_bad_files_in_one_line(tmp_path, vm_file):
    cut = tmp_path / "cut.rvh"
    shutil.copyfile(vm_file, cut)
    os.truncate(cut, 5000)
    flipped = tmp_path / "flipped.rvh"
    shutil.copyfile(vm_file, flipped)
    with open(flipped, "r+b") as file:
        file.seek(100)
        byte = file.read(1)
        file.seek(100)
        file.write(bytes([byte[0] ^ 4]))
    for path, words in ((cut, "truncated VM file"), (flipped, "corrupted VM file")):
        for command in (["run", "--restore", str(path)], ["snapshot", "info", str(path)]):
            done = subprocess.run(
                [sys.executable, "-m", "rvh.cli", *command],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=120,
            )
            assert done.returncode == EXIT_LOAD_ERROR
            assert done.stdout == ""
            assert len(done.stderr.splitlines()) == 1 and words in done.stderr, done.stderr


def test_state_of_another_layout_is_refused(tmp_path, vm_file, monkeypatch):
    from rvh import snapshot

    monkeypatch.setitem(snapshot.LAYOUT, "state", L.STATE_SIZE + 1)
    expect_refused(vm_file, "with another hart state layout")


def test_a_save_point_where_a_load_evicted_the_code_pages_tlb_entry_changes_no_count():
    # the kernel keeps a copy of the fetch page's TLB entry; a load whose page shares that
    # entry's set (here the code's page 0x80000 and the data's 0x80100: index 0 ^ 256)
    # evicts it.  A save point splits the kernel call there: the restored run's counts must
    # be the uninterrupted run's, so the copy goes when the TLB entry goes
    code = assemble(
        """
        li t0, 0x80100000
        li t1, 300
    loop:
        lbu t2, 0(t0)
        addi t1, t1, -1
        bnez t1, loop
        wfi
        """
    )

    def run(budgets: list[int]) -> tuple[int, int, int]:
        machine = Machine(MachineConfig(memory=SMALL), output=lambda _: None)
        machine.machine[L.M_MTIMECMP] = -1  # no timer interrupt
        machine.bus.write_bytes(RAM_BASE, code)
        hart = machine.harts[0]
        hart.reset(RAM_BASE)
        for budget in budgets:
            hart.run(budget)
        return hart.steps, hart.pc, int(hart.state[L.TLB_MISSES])

    whole = run([500])
    assert whole[0] == 500 and RAM_BASE < whole[1] < RAM_BASE + 0x40  # still in the loop
    for split_at in (7, 20, 101, 250):
        assert run([split_at, 500 - split_at]) == whole

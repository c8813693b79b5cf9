"""gdb-multiarch against ``rvh run --gdb``, and against QEMU 7.2 on the same ELF.

Every subprocess has a timeout; rvh listens on a unix socket in the test's directory (or on
TCP port 0, read back from its stderr), QEMU on a free TCP port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import GUESTS, build_elf, require_guest, require_qemu, require_tool

from rvh.gdb.packets import Packet, PacketReader, frame

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60

# each test starts rvh (and gdb, or QEMU) in subprocesses: seconds each
pytestmark = pytest.mark.slow

# a guest that calls bump() three times; bump() increments the doubleword ``counter``
GUEST = """
    li s0, 0
loop:
    call bump
    addi s0, s0, 1
    li t0, 3
    blt s0, t0, loop
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
.globl bump
bump:
    la t0, counter
    ld a0, 0(t0)
    addi a0, a0, 1
    sd a0, 0(t0)
    ret
.data
.align 3
.globl counter
counter: .dword 0
.dword 0x1122334455667788
"""

SESSION = """
break bump
continue
info registers pc
stepi
info registers pc a0
p $priv
x/4xw &counter
delete 1
watch *(long *)&counter
continue
info registers pc a0
kill
"""


def _gdb() -> str:
    return require_tool("gdb-multiarch", "Debian's gdb-multiarch (tools/setup.sh)")


def _rvh_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rvh.cli", "run", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextmanager
def _rvh(args: list[str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """rvh run with --gdb on a unix socket and --gdb-wait; yields it and the socket path."""
    path = str(tmp_path / "gdb.sock")
    process = subprocess.Popen(
        _rvh_command(*args, "--gdb", f"unix:{path}", "--gdb-wait", "--serial", "null"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # the kernel's compile may take a while
        assert f"listening on unix:{path}" in line, line
        yield process, path
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)


def _run_gdb(elf: Path, target: str, script: str, tmp_path: Path) -> str:
    commands = tmp_path / "commands.gdb"
    commands.write_text("set pagination off\nset confirm off\n" + script)
    result = subprocess.run(
        [
            _gdb(),
            "-q",
            "-batch",
            "-nx",
            "-ex",
            "set architecture riscv:rv64",
            "-ex",
            f"file {elf}",
            "-ex",
            f"target remote {target}",
            "-x",
            str(commands),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _transcript(text: str) -> list[str]:
    """The lines that say what happened (not gdb's chatter about connecting)."""
    keep = []
    for line in text.splitlines():
        if line.startswith(("The target architecture", "warning:", "Remote debugging")):
            continue
        keep.append(line.rstrip())
    return keep


@pytest.fixture
def guest(tmp_path: Path) -> Path:
    return build_elf(GUEST, tmp_path / "bump.elf")


@pytest.mark.qemu
def test_a_session_on_rvh_reads_as_on_qemu(guest: Path, tmp_path: Path) -> None:
    qemu = require_qemu()
    port = _free_port()
    reference = subprocess.Popen(
        [qemu, "-M", "virt", "-cpu", "rv64,h=true", "-bios", "none", "-kernel", str(guest)]
        + ["-nographic", "-S", "-gdb", f"tcp:127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # until QEMU listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        # QEMU takes one gdb: the probe above was it, and it is gone again
        time.sleep(0.2)
        on_qemu = _run_gdb(guest, f"127.0.0.1:{port}", SESSION, tmp_path)
    finally:
        reference.kill()
        reference.wait(timeout=TIMEOUT)
    with _rvh([str(guest)], tmp_path) as (rvh, path):
        on_rvh = _run_gdb(guest, path, SESSION, tmp_path)
        assert rvh.wait(timeout=TIMEOUT) == 0  # kill ends the run, as QEMU's does
        assert rvh.stderr is not None
        assert "killed by gdb" in rvh.stderr.read()
    expected = _transcript(on_qemu)
    # what the session shows, so a broken QEMU run cannot make the comparison vacuous
    assert "Breakpoint 1, 0x0000000080000030 in bump ()" in expected
    assert "$1 = 3" in expected
    assert "Old value = 1" in expected and "New value = 2" in expected
    assert any(line.startswith("a0             0x2") for line in expected)
    assert "[Inferior 1 (process 1) killed]" in expected
    assert _transcript(on_rvh) == expected


def test_tcp_port_zero_is_read_back_and_the_run_goes_on_after_detach(guest: Path) -> None:
    process = subprocess.Popen(
        _rvh_command(str(guest), "--gdb", "tcp::0", "--gdb-wait", "--serial", "null"),
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on tcp:127\.0\.0\.1:(\d+)", line)
        assert match, line
        port = int(match.group(1))
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            client = _Client(sock)
            assert client.ask(b"?").startswith(b"T05thread:p1.1;")
            assert client.ask(b"D") == b"OK"
        assert process.wait(timeout=TIMEOUT) == 0  # the guest ran to its end
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)


class _Client:
    """A minimal gdb, for input gdb itself never sends."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(TIMEOUT)
        self.reader = PacketReader()
        self.pending: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.sock.sendall(frame(payload))

    def reply(self) -> bytes:
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "the stub closed the connection"
            self.pending += [e.data for e in self.reader.feed(data) if isinstance(e, Packet)]
        return self.pending.pop(0)

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()


def test_bad_input_gets_errors_and_the_session_goes_on(guest: Path, tmp_path: Path) -> None:
    with _rvh([str(guest)], tmp_path) as (rvh, path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            client = _Client(sock)
            sock.sendall(b"$g#00")  # a wrong checksum: nak, nothing else
            sock.sendall(b"$" + b"M" * 70000)  # longer than any packet may be
            assert client.ask(b"QStartNoAckMode") == b"OK"
            assert client.ask(b"mzz,4") == b"E01"  # not hex
            assert client.ask(b"m80000000") == b"E01"  # no length
            assert client.ask(b"m0,4") == b"E14"  # nothing mapped at 0
            # a huge length is cut to what fits in a packet
            big = client.ask(b"m80000000,ffffffffffff")
            assert 0 < len(big) <= 0x4000 and bytes.fromhex(big.decode())[:4] != b""
            assert client.ask(b"p99999") == b"E00"
            assert client.ask(b"Pzz") == b"E01"
            assert client.ask(b"Hg63") == b"E00"  # no hart 99
            assert client.ask(b"Z9,80000000,4") == b""  # not a breakpoint kind
            assert client.ask(b"vCont;x") == b"E01"
            assert client.ask(b"M80000000,4:00") == b"E01"  # length and data differ
            assert client.ask(b"qRcmd," + b"frobnicate".hex().encode()).startswith(
                b"unknown monitor command".hex().encode()
            )
            assert client.ask(b"unknownpacket") == b""
            # registers read back what was written, and pc is where the boot ROM starts
            assert client.ask(b"p20") == (0x1000).to_bytes(8, "little").hex().encode()
            assert client.ask(b"P5=" + (0xABCD).to_bytes(8, "little").hex().encode()) == b"OK"
            assert client.ask(b"p5") == (0xABCD).to_bytes(8, "little").hex().encode()
            # and the client drops in the middle of a packet
            sock.sendall(b"$m8000")
        # the run goes on without gdb, to the guest's own end
        assert rvh.wait(timeout=TIMEOUT) == 0
        assert rvh.stderr is not None
        assert "Traceback" not in rvh.stderr.read()


def test_ctrl_c_stops_a_running_machine_and_threads_are_harts(tmp_path: Path) -> None:
    spinner = build_elf("1: j 1b\n", tmp_path / "spin.elf")
    with _rvh([str(spinner), "--smp", "2"], tmp_path) as (rvh, path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            client = _Client(sock)
            assert client.ask(b"QStartNoAckMode") == b"OK"
            assert client.ask(b"qfThreadInfo") == b"mp1.1,p1.2"
            assert client.ask(b"qsThreadInfo") == b"l"
            assert client.ask(b"Hgp1.2") == b"OK"
            assert client.ask(b"qC") == b"QCp1.2"
            assert client.ask(b"T2") == b"OK" and client.ask(b"T3") == b"E00"
            extra = bytes.fromhex(client.ask(b"qThreadExtraInfo,2").decode())
            assert extra == b"hart 1 M-mode active"
            client.send(b"c")
            time.sleep(0.5)
            sock.sendall(b"\x03")
            assert client.reply().startswith(b"T02thread:")
            pc = int.from_bytes(bytes.fromhex(client.ask(b"p20").decode()), "little")
            assert pc == 0x8000_0000  # spinning on its j 1b
            harts = bytes.fromhex(client.ask(b"qRcmd," + b"info harts".hex().encode()).decode())
            assert harts.decode().splitlines() == [
                "hart 0: pc 0x80000000 M-mode V=0 priv=3 active",
                "hart 1: pc 0x80000000 M-mode V=0 priv=3 active",
            ]
            stats = bytes.fromhex(client.ask(b"qRcmd," + b"stats".hex().encode()).decode())
            assert b"instructions retired:" in stats
            client.send(b"k")
        assert rvh.wait(timeout=TIMEOUT) == 0


def test_a_breakpoint_in_a_vm_stops_in_that_vm_only(tmp_path: Path) -> None:
    """The hypervisor and the VM both start at 0x8020_0000 with the same code (sstart.S),
    each in its own address space.  Stopped at the hypervisor's first instruction, a
    breakpoint on the second stops in the VM with ``monitor vm 0``, though the hypervisor
    runs that address first; without it, in the hypervisor."""
    hello = require_guest(GUESTS / "smode" / "hello.elf")
    start = _symbol(hello, "_start")
    main = _symbol(hello, "main")
    assert (
        start == 0x8020_0000 == _symbol(ROOT / "firmware" / "build" / "hyp" / "hyp.elf", "_start")
    )
    in_vm = f"""
monitor info vms
monitor vm 0
break *{start + 4:#x}
continue
p $virt
monitor info harts
delete
break main
continue
p $priv
p $virt
x/2i $pc
p/x *(unsigned int *)$pc
monitor info vms
monitor vm off
monitor phys on
p/x *(unsigned int *){main - 0x8000_0000 + 0x8400_0000:#x}
p/x *(unsigned int *){main:#x}
kill
"""
    with _rvh(["--hyp", "--guest", str(hello)], tmp_path) as (rvh, path):
        out = _run_gdb(hello, path, in_vm, tmp_path)
        assert rvh.wait(timeout=TIMEOUT) == 0
    lines = out.splitlines()  # gdb prints monitor output on stderr: after the rest here
    assert any(line.endswith("VMID 1: not started") for line in lines)
    assert any(line.startswith("vm 0: memory is its guest view") for line in lines)
    assert "Breakpoint 1, 0x0000000080200004 in _start () at " in out
    assert "$1 = 1" in lines
    assert f"hart 0: pc {start + 4:#x} VS-mode V=1 priv=1 active" in lines
    assert "Breakpoint 2, main (hartid=0, dtb=" in out
    assert "$2 = 1" in out and "$3 = 1" in out  # S-mode with V=1: VS
    assert f"=> 0x{main:x} <main>:\tadd\tsp,sp,-80" in out  # read through the G-stage
    assert "VMID 1: running, exits " in out
    # physical: the VM's main is in its RAM at host 0x8400_0000 (the vm@0 node's reg); the
    # same address as a host physical one is the hypervisor's own code
    assert "host 0x84000000" in out
    in_guest = out.split("$4 = ")[1].split()[0]
    assert f"$5 = {in_guest}" in out
    assert f"$6 = {in_guest}" not in out and "$6 = 0x" in out
    assert "memory is physical" in out
    on_host = f"""
break *{start + 4:#x}
continue
p $virt
monitor info harts
kill
"""
    with _rvh(["--hyp", "--guest", str(hello)], tmp_path) as (rvh, path):
        out = _run_gdb(hello, path, on_host, tmp_path)
        assert rvh.wait(timeout=TIMEOUT) == 0
    assert "$1 = 0" in out
    assert f"hart 0: pc {start + 4:#x} HS-mode V=0 priv=1 active" in out


def _symbol(elf: Path, name: str) -> int:
    listing = subprocess.run(
        ["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True, timeout=TIMEOUT
    ).stdout
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise AssertionError(f"{elf} has no symbol {name}")


def test_attaching_to_a_running_machine_stops_it(tmp_path: Path) -> None:
    spinner = build_elf("1: addi a0, a0, 1\n j 1b\n", tmp_path / "spin.elf")
    path = str(tmp_path / "gdb.sock")
    process = subprocess.Popen(
        _rvh_command(str(spinner), "--gdb", f"unix:{path}", "--serial", "null"),
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert process.stderr is not None
        assert "listening on" in process.stderr.readline()
        time.sleep(0.5)  # it runs
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            client = _Client(sock)
            assert client.ask(b"?") == b"T05thread:p1.1;"
            a0 = client.ask(b"pa")
            assert client.ask(b"pa") == a0  # stopped: a0 no longer moves
            assert int.from_bytes(bytes.fromhex(a0.decode()), "little") > 0
            client.send(b"k")
        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)


def test_bad_gdb_options_are_one_line_errors(guest: Path, tmp_path: Path) -> None:
    for args, message in (
        (["--gdb", "tcp::99999"], "--gdb 'tcp::99999': use tcp::PORT, tcp:HOST:PORT or unix:PATH"),
        (["--gdb", "serial"], "--gdb 'serial': use tcp::PORT"),
        (["--gdb-wait"], "--gdb-wait goes with --gdb WHERE"),
        (["--gdb", f"unix:{tmp_path}/no/such/dir/s"], "No such file or directory"),
    ):
        result = subprocess.run(
            _rvh_command(str(guest), *args),
            capture_output=True,
            text=True,
            env=_env(),
            cwd=ROOT,
            timeout=TIMEOUT,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_hart_that_hits_a_breakpoint_is_the_stop_s_thread(tmp_path: Path) -> None:
    program = """
    li a2, 0
    csrr a0, mhartid
    bnez a0, second
first:
    j first
second:
    addi a2, a2, 1
.globl target
target:
    j second
"""
    elf = build_elf(program, tmp_path / "smp.elf")
    target = _symbol(elf, "target")
    with _rvh([str(elf), "--smp", "2"], tmp_path) as (rvh, path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            client = _Client(sock)
            assert client.ask(b"QStartNoAckMode") == b"OK"
            assert client.ask(f"Z0,{target:x},4".encode()) == b"OK"
            assert client.ask(f"Z1,{target:x},4".encode()) == b"OK"  # the same, as hardware
            assert client.ask(b"vCont;c") == b"T05thread:p1.2;"
            assert client.ask(b"Hgp1.2") == b"OK"
            pc = int.from_bytes(bytes.fromhex(client.ask(b"p20").decode()), "little")
            assert pc == target
            a2 = int.from_bytes(bytes.fromhex(client.ask(b"pc").decode()), "little")
            assert a2 == 1  # the addi before it ran once
            assert client.ask(b"vCont;c") == b"T05thread:p1.2;"
            assert client.ask(b"pc") == (2).to_bytes(8, "little").hex().encode()
            assert client.ask(f"z0,{target:x},4".encode()) == b"OK"
            assert client.ask(f"z1,{target:x},4".encode()) == b"OK"
            # a step of hart 1 alone: one instruction, then the stop names it
            assert client.ask(b"vCont;s:p1.2") == b"T05thread:p1.2;"
            pc = int.from_bytes(bytes.fromhex(client.ask(b"p20").decode()), "little")
            assert pc == _symbol(elf, "second")
            client.send(b"k")
        assert rvh.wait(timeout=TIMEOUT) == 0


def test_a_watchpoint_in_a_vm_stops_in_that_vm_only(tmp_path: Path) -> None:
    """One address, two memories: the hypervisor's ``hyp_nharts`` (which its boot code
    sets, after clearing its bss) is a word of the VM's bss too, which the VM's start-up code
    clears later."""
    hello = require_guest(GUESTS / "smode" / "hello.elf")
    hyp = ROOT / "firmware" / "build" / "hyp" / "hyp.elf"
    word = _symbol(hyp, "hyp_nharts")
    assert _symbol(hello, "__bss_start") <= word < _symbol(hello, "__bss_end")
    outputs = []
    for select in ("monitor vm 0\n", ""):
        script = f"{select}awatch *(long *){word:#x}\ncontinue\np $virt\nmonitor info harts\nkill\n"
        with _rvh(["--hyp", "--guest", str(hello)], tmp_path) as (rvh, path):
            outputs.append(_run_gdb(hello, path, script, tmp_path))
            assert rvh.wait(timeout=TIMEOUT) == 0
    in_vm, on_host = outputs
    assert "Hardware access (read/write) watchpoint 1: " in in_vm
    assert "$1 = 1" in in_vm and " VS-mode V=1 priv=1 active" in in_vm
    assert "sstart.S:" in in_vm  # stopped in the VM's start-up code, after the store
    # on the host the same address is the hypervisor's word: its boot code's clear of its bss
    # touches it first, in HS-mode
    assert "Hardware access (read/write) watchpoint 1: " in on_host
    assert "$1 = 0" in on_host and " HS-mode V=0 priv=1 active" in on_host


def test_a_client_that_leaves_while_the_machine_runs(guest: Path, tmp_path: Path) -> None:
    with _rvh([str(guest)], tmp_path) as (rvh, path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            client = _Client(sock)
            assert client.ask(b"?").startswith(b"T05")
            bump = _symbol(guest, "bump")
            assert client.ask(f"Z0,{bump:x},2".encode()) == b"OK"
            client.send(b"c")
            assert client.reply().startswith(b"T05")
            client.send(b"c")  # and gone, without waiting for the stop
        # its breakpoint went with it: the guest runs to its end
        assert rvh.wait(timeout=TIMEOUT) == 0


def test_a_breakpoint_in_a_function_called_from_another_page_stops_every_call(
    tmp_path: Path,
) -> None:
    # picolibc's printf (__d_vfprintf, page 0x80000000) calls __file_str_put (page 0x80001000)
    # for each character: the fast loop and the tier's code enter its page by the TLB, so
    # the page must keep a slow fetch tag after gdb steps off the breakpoint (rvh/cpu/mmu.py)
    elf = require_guest(GUESTS / "hello" / "hello_picolibc.elf")
    script = "break __file_str_put\n" + "continue\n" * 4 + "info breakpoints\nkill\n"
    with _rvh([str(elf)], tmp_path) as (_, path):
        transcript = _run_gdb(elf, path, script, tmp_path)
    stops = re.findall(r"Breakpoint 1, __file_str_put \(c=\d+ '(.)'", transcript)
    assert stops == ["[", "a", "b", " "], transcript
    assert "breakpoint already hit 4 times" in transcript

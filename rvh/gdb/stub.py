"""The gdb stub: ``rvh run ... --gdb tcp::PORT|unix:PATH [--gdb-wait]``.

One trio task listens beside the harts and serves one gdb at a time.  The machine is
all-stop, as QEMU's is: the harts run until a breakpoint, a watchpoint, a finished step or a
Ctrl-C, then the machine task parks in :meth:`GdbStub.park` and gdb reads and writes the
stopped harts from the connection task (trio runs one task at a time, so nothing moves under
it).  Breakpoints and watchpoints are checked by the kernel (``rvh/cpu/debug.py``) by virtual
address; the conditions of ``monitor vm N`` (V=1 and that VM's VMID) are checked here, and a
hit that does not meet them resumes at once.

The protocol as gdb-multiarch speaks it (gdb's manual, "Remote Protocol"): qSupported with a
target description, g/G, p/P, m/M, Z0-Z4/z0-z4, c, s, vCont, harts as threads of process 1
(thread id = hartid + 1, ``p1.N`` in multiprocess form, which gdb then uses), qRcmd
(``monitor``), k, vKill, D, and QStartNoAckMode.  What it does not know gets the empty reply,
which tells gdb so.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from rvh.cpu import layout as L
from rvh.cpu.exits import Exit
from rvh.cpu.hart import Hart
from rvh.errors import ConfigError
from rvh.gdb.packets import (
    PACKET_SIZE,
    Ack,
    BadPacket,
    Interrupt,
    Packet,
    PacketReader,
    frame,
)
from rvh.gdb.target import (
    PC_REGNUM,
    Registers,
    target_xml,
    two_stage,
    walk,
)
from rvh.isa.fields import HGATP_VMID_MASK, HGATP_VMID_SHIFT

if TYPE_CHECKING:
    from rvh.hyp import VmPlan
    from rvh.machine import Machine

SIGINT = 2
SIGTRAP = 5
MAX_READ = PACKET_SIZE // 2 - 16  # bytes of memory per 'm' reply (two hex digits each)
# thread ids are hartid + 1: gdb reserves 0 ("any thread") and -1 ("all threads")
KIND_OF_Z = {2: L.WATCH_WRITES, 3: L.WATCH_READS, 4: L.WATCH_READS | L.WATCH_WRITES}
STOP_WORD = {2: "watch", 3: "rwatch", 4: "awatch"}


class PacketError(Exception):
    """A packet gdb should not have sent: the reply is an error, the stub goes on."""


@dataclass(frozen=True)
class Watch:
    start: int
    length: int
    z_type: int  # 2 write, 3 read, 4 access
    vmid: int | None  # stop only in this VM (monitor vm N), or anywhere


@dataclass
class Stop:
    hart: int
    signal: int
    watch: tuple[str, int] | None = None  # ("watch", address) for a watchpoint
    pc: int = 0  # where a watchpoint stopped the hart (before its access)


def parse_address(text: str) -> tuple[str, str | int]:
    """``tcp::PORT``, ``tcp:HOST:PORT`` or ``unix:PATH`` (QEMU's -gdb spellings)."""
    if text.startswith("unix:") and len(text) > 5:
        return "unix", text[5:]
    if text.startswith("tcp:"):
        host, _, port = text[4:].rpartition(":")
        if port.isdigit() and int(port) < 65536:
            return host or "127.0.0.1", int(port)
    raise ConfigError(f"--gdb {text!r}: use tcp::PORT, tcp:HOST:PORT or unix:PATH")


class GdbStub:
    def __init__(self, machine: Machine, address: str, wait: bool) -> None:
        self.machine = machine
        self.address = parse_address(address)
        self.registers = Registers(machine.config.extensions)
        self.xml = target_xml(machine.config.extensions).encode()
        self.stop_requested = wait  # --gdb-wait: park before the first instruction
        self.parked = False
        self._parked = trio.Event()
        self._resume = trio.Event()
        self._action = "continue"  # what the parked machine does next: continue, step, kill
        self._step_hart = 0
        self.stop = Stop(0, SIGTRAP)
        self.reply_pending = False  # gdb waits for a stop reply (after c, s, vCont)
        self.stream: trio.abc.Stream | None = None
        self._send_lock = trio.Lock()
        self._last_sent = b""
        self.no_ack = False
        self.breakpoints: dict[int, set[int | None]] = {}  # address -> VMIDs (None: any)
        self.watches: list[Watch] = []
        self.g_hart = 0  # Hg: the hart registers and memory come from
        self.phys = False
        self.vm: int | None = None  # monitor vm N
        self.bound = ""  # where it listens, once listening
        self.ended = False
        self._kill_after_reply = False
        self.single_thread_resume = False  # vCont;c:TID, gdb's software single step

    # ---- the listener ------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listener = await self._listen()
        print(f"rvh: gdb: listening on {self.bound}", file=sys.stderr, flush=True)
        task_status.started()
        try:
            await self._accept(listener)
        finally:
            if self.address[0] == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(str(self.address[1]))

    async def _accept(self, listener: trio.SocketListener) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                if self.stream is not None or self.ended:
                    await stream.aclose()  # one debugger at a time, as QEMU
                    continue
                self.stream = stream
                try:
                    await self._session(stream)
                finally:
                    self.stream = None
                    with trio.CancelScope(shield=True):
                        await stream.aclose()
                    self._disconnected()

    async def _listen(self) -> trio.SocketListener:
        kind, where = self.address
        if kind == "unix":
            path = str(where)
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if os.path.exists(path) and _is_socket(path):
                    os.unlink(path)
                await sock.bind(path)
            except OSError as error:
                sock.close()
                raise ConfigError(f"--gdb unix:{path}: {error.strerror}") from None
            self.bound = f"unix:{path}"
        else:
            sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                await sock.bind((kind, int(where)))
            except OSError as error:
                sock.close()
                raise ConfigError(f"--gdb tcp:{kind}:{where}: {error.strerror}") from None
            self.bound = f"tcp:{kind}:{sock.getsockname()[1]}"
        sock.listen(1)
        return trio.SocketListener(sock)

    async def _session(self, stream: trio.abc.Stream) -> None:
        self.no_ack = False
        self._request_stop(SIGTRAP)  # QEMU stops the machine when gdb attaches
        reader = PacketReader()
        while True:
            try:
                data = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            for event in reader.feed(bytes(data)):
                if isinstance(event, Interrupt):
                    self._request_stop(SIGINT)
                elif isinstance(event, Ack):
                    if not event.ok and self._last_sent and not self.no_ack:
                        await self._send_raw(self._last_sent)
                elif isinstance(event, BadPacket):
                    if not self.no_ack:
                        await self._send_raw(b"-")
                elif isinstance(event, Packet):
                    if not self.no_ack:
                        await self._send_raw(b"+")
                    try:
                        reply = await self._handle(event.data)
                    except (PacketError, ValueError, KeyError, IndexError):
                        reply = b"E01"  # malformed: numbers that are not hex, missing fields
                    except Exception as error:  # noqa: BLE001 - a stub bug must not end the run
                        what = event.data[:40].decode("latin-1")
                        print(
                            f"rvh: gdb: packet {what!r} failed: {type(error).__name__}: {error}",
                            file=sys.stderr,
                        )
                        reply = b"E01"
                    if reply is not None:
                        await self.send(reply)
                    if self._kill_after_reply:
                        self._kill()
                        return
                    if event.data[:1] == b"k" or (event.data[:1] == b"D" and reply == b"OK"):
                        return  # the session is over; the listener takes the next gdb

    def _disconnected(self) -> None:
        """gdb went away (detach, kill, or a dropped connection): the run goes on without
        it, with no breakpoints left behind."""
        self.breakpoints.clear()
        self.watches.clear()
        self._sync_kernel()
        self.reply_pending = False
        self.phys = False
        self.vm = None
        if self.machine.exit_status is None:
            self._resume_machine("continue")

    async def _send_raw(self, data: bytes) -> None:
        stream = self.stream
        if stream is None:
            return
        async with self._send_lock:
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass  # the reader sees the end of the connection

    async def send(self, payload: bytes) -> None:
        packet = frame(payload)
        self._last_sent = packet
        await self._send_raw(packet)

    # ---- the machine's side ------------------------------------------------------------
    def _request_stop(self, signal: int) -> None:
        if not self.stop_requested and not self.parked:
            self.stop = Stop(self.g_hart, signal)
        self.stop_requested = True
        self.machine.notify()  # an idle machine waits for an event

    def _resume_machine(self, action: str, hart: int = 0) -> None:
        """Tell a parked (or parking) machine what to do next.  A running machine is left
        alone: an early resume would let its next stop pass unnoticed."""
        if not (self.parked or self.stop_requested):
            return
        self._action = action
        self._step_hart = hart
        self._resume.set()

    async def park(self) -> None:
        """The machine task, stopped: report the stop and serve steps until gdb continues
        (or kills)."""
        machine = self.machine
        while True:
            self.parked = True
            self.single_thread_resume = False
            self._parked.set()
            if self.reply_pending and self.stream is not None:
                self.reply_pending = False
                await self.send(self.stop_reply())
            await self._resume.wait()
            self._resume = trio.Event()
            self._parked = trio.Event()
            self.parked = False
            if self._action == "kill" or machine.exit_status is not None:
                self.stop_requested = False
                return
            if self._action == "step":
                hart = machine.harts[self._step_hart]
                self.stop = Stop(hart.hartid, SIGTRAP)
                self._step(hart)
                if machine.exit_status is not None:
                    self.stop_requested = False
                    return
                continue
            # continue: a hart stopped at a breakpoint first executes that instruction
            self.stop_requested = False
            watch_stopped = self.stop.hart if self.stop.watch is not None else None
            for hart in machine.harts:
                if self._at_breakpoint(hart) or (
                    hart.hartid == watch_stopped and hart.pc == self.stop.pc
                ):
                    self._step(hart)
                    if self.stop_requested or machine.exit_status is not None:
                        break
            if not self.stop_requested or machine.exit_status is not None:
                return

    def _step(self, hart: Hart) -> None:
        """One instruction on ``hart`` with no breakpoint or watchpoint in the way (gdb asks
        for a step off the one it stands on, with the watchpoint removed, but a hit for
        another VM is stepped over here)."""
        if hart.state[L.HALTED]:
            return
        machine = self.machine
        m = machine.machine
        breakpoints, watches = int(m[L.M_BREAKPOINTS]), int(m[L.M_WATCHES])
        m[L.M_BREAKPOINTS] = 0
        m[L.M_WATCHES] = 0
        try:
            machine.step_instruction(hart)
        finally:
            m[L.M_BREAKPOINTS] = breakpoints
            m[L.M_WATCHES] = watches
            if watches or breakpoints:
                # the step may have given a watched page fast tags, or a page with a
                # breakpoint a fast fetch tag (rvh/cpu/mmu.py)
                hart.flush_tlb()

    def _at_breakpoint(self, hart: Hart) -> bool:
        if hart.state[L.HALTED] or hart.state[L.WFI]:
            return False
        return (hart.pc & (2**64 - 1)) in self.breakpoints

    def hit(self, hart: Hart, reason: Exit) -> None:
        """The kernel stopped ``hart`` at a breakpoint or before a watched access: stop the
        machine if the hit's condition holds, else step over that instruction and carry on."""
        vmid = self._vmid_of(hart)
        if reason == Exit.BREAKPOINT:
            wanted = self.breakpoints.get(hart.pc & (2**64 - 1), set())
            if self.single_thread_resume or None in wanted or vmid in wanted:
                self.stop = Stop(hart.hartid, SIGTRAP)
                self.stop_requested = True
            else:
                self._step(hart)  # not this VM's: over it, and on
            return
        index = int(hart.state[L.DEBUG_WATCH_HIT]) - 1
        address = int(hart.state[L.DEBUG_WATCH_ADDR]) & (2**64 - 1)
        hart.state[L.DEBUG_WATCH_HIT] = 0
        kernel = self._kernel_watches()
        if not 0 <= index < len(kernel):
            self._step(hart)
            return
        for watch in self.watches:
            end = watch.start + watch.length
            if (watch.start, end, KIND_OF_Z[watch.z_type]) != kernel[index]:
                continue
            if watch.vmid is not None and watch.vmid != vmid:
                continue
            # gdb looks for the reported address inside the watched range
            reported = min(max(address, watch.start), end - 1)
            self.stop = Stop(hart.hartid, SIGTRAP, (STOP_WORD[watch.z_type], reported), hart.pc)
            self.stop_requested = True
            return
        self._step(hart)  # another VM's access: over it, and on

    def _vmid_of(self, hart: Hart) -> int | None:
        """The VMID ``hart`` runs in, or None outside a VM (V=0)."""
        if not hart.state[L.VIRT]:
            return None
        hgatp = hart.csr("hgatp")
        return (hgatp & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT

    async def machine_ended(self, status: int) -> None:
        """The run is over: tell a gdb waiting for a stop (W, the exit status)."""
        self.ended = True
        if self.stream is not None and self.reply_pending:
            self.reply_pending = False
            await self.send(b"W%02x" % (status & 0xFF))

    def stop_reply(self) -> bytes:
        if self.machine.exit_status is not None:
            return b"W%02x" % (self.machine.exit_status & 0xFF)
        stop = self.stop
        text = f"T{stop.signal:02x}thread:p1.{stop.hart + 1:x};"
        if stop.watch is not None:
            text += f"{stop.watch[0]}:{stop.watch[1]:x};"
        return text.encode()

    # ---- breakpoints and watchpoints in the kernel's tables ----------------------------
    def _kernel_watches(self) -> list[tuple[int, int, int]]:
        """(start, end, kind) of each distinct watch, in the kernel's order."""
        seen: list[tuple[int, int, int]] = []
        for watch in self.watches:
            entry = (watch.start, watch.start + watch.length, KIND_OF_Z[watch.z_type])
            if entry not in seen:
                seen.append(entry)
        return seen

    def _sync_kernel(self) -> None:
        m = self.machine.machine
        addresses = sorted(self.breakpoints)
        m[L.M_BREAKPOINTS] = len(addresses)
        for i, address in enumerate(addresses):
            m[L.M_BREAK_ADDR + i] = _signed(address)
        watches = self._kernel_watches()
        m[L.M_WATCHES] = len(watches)
        for i, (start, end, kind) in enumerate(watches):
            base = L.M_WATCH_BASE + i * L.WATCH_FIELDS
            m[base + L.WATCH_START] = _signed(start)
            m[base + L.WATCH_END] = _signed(end)
            m[base + L.WATCH_KIND] = kind
        # pages that now hold a watch must lose their fast TLB tags (and ones that no longer
        # do may get them back)
        for hart in self.machine.harts:
            hart.flush_tlb()

    def _insert(self, z_type: int, address: int, length: int) -> bytes:
        vmid = self._selected_vmid()
        if z_type in (0, 1):
            if address not in self.breakpoints and len(self.breakpoints) >= L.MAX_BREAKPOINTS:
                return b"E28"  # ENOSPC
            self.breakpoints.setdefault(address, set()).add(vmid)
        else:
            watch = Watch(address, max(length, 1), z_type, vmid)
            if watch not in self.watches:
                kernel = self._kernel_watches()
                entry = (address, address + watch.length, KIND_OF_Z[z_type])
                if entry not in kernel and len(kernel) >= L.MAX_WATCHPOINTS:
                    return b"E28"
                self.watches.append(watch)
        self._sync_kernel()
        return b"OK"

    def _remove(self, z_type: int, address: int, length: int) -> bytes:
        vmid = self._selected_vmid()
        if z_type in (0, 1):
            vmids = self.breakpoints.get(address)
            if vmids is not None:
                vmids.discard(vmid)
                if not vmids:
                    del self.breakpoints[address]
        else:
            watch = Watch(address, max(length, 1), z_type, vmid)
            if watch in self.watches:
                self.watches.remove(watch)
        self._sync_kernel()
        return b"OK"

    # ---- memory ------------------------------------------------------------------------
    def _selected_vmid(self) -> int | None:
        return None if self.vm is None else vmid_of_vm(self.vm)

    def _read_u64(self, paddr: int) -> int | None:
        host = self.machine.bus.host_offset(paddr, 8)
        if host is None:
            return None
        return int.from_bytes(self.machine.bus.memory[host : host + 8].tobytes(), "little")

    def translate(self, vaddr: int) -> int | None:
        """The physical address gdb's ``vaddr`` means, in the selected translation."""
        if self.phys:
            return vaddr
        hart = self.machine.harts[self.g_hart]
        if self.vm is not None:
            return self._translate_in_vm(hart, self.vm, vaddr)
        priv = int(hart.state[L.PRIV])
        if priv == L.PRIV_M:
            return vaddr
        if not hart.state[L.VIRT]:
            return walk(hart.csr("satp"), vaddr, self._read_u64, False)
        return two_stage(hart.csr("vsatp"), hart.csr("hgatp"), vaddr, self._read_u64)

    def _translate_in_vm(self, hart: Hart, index: int, vaddr: int) -> int | None:
        """VM ``index``'s view: its own vsatp and G-stage when the hart has it loaded (hgatp
        holds its VMID), else its guest-physical memory as the hypervisor was told to map it
        (the host device tree's vm@N reg)."""
        hgatp = hart.csr("hgatp")
        if (hgatp & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT == vmid_of_vm(index) and hgatp >> 60:
            return two_stage(hart.csr("vsatp"), hgatp, vaddr, self._read_u64)
        plan = self._plans()[index]
        from rvh.hyp import GUEST_RAM_BASE

        if GUEST_RAM_BASE <= vaddr < GUEST_RAM_BASE + plan.spec.memory:
            return plan.host(vaddr)
        return None

    def _plans(self) -> list[VmPlan]:
        return list(getattr(self.machine.recipe, "plans", []))

    def read_memory(self, address: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``address``; fewer where translation stops."""
        out = bytearray()
        bus = self.machine.bus
        while len(out) < length:
            vaddr = (address + len(out)) & (2**64 - 1)
            chunk = min(length - len(out), L.PAGE_SIZE - (vaddr & (L.PAGE_SIZE - 1)))
            paddr = self.translate(vaddr)
            host = None if paddr is None else bus.host_offset(paddr, chunk)
            if host is None:
                break  # an unmapped page, or a device: reading one would have effects
            out += bus.memory[host : host + chunk].tobytes()
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> bool:
        bus = self.machine.bus
        pieces = []
        done = 0
        while done < len(data):
            vaddr = (address + done) & (2**64 - 1)
            chunk = min(len(data) - done, L.PAGE_SIZE - (vaddr & (L.PAGE_SIZE - 1)))
            paddr = self.translate(vaddr)
            if paddr is None or bus.host_offset(paddr, chunk) is None:
                return False
            pieces.append((paddr, data[done : done + chunk]))
            done += chunk
        for paddr, piece in pieces:
            # the ROM too (gdb may patch the reset vector), keeping decoded code coherent
            bus.write_bytes(paddr, piece, rom=True)
        return True

    # ---- packets -----------------------------------------------------------------------
    async def _handle(self, data: bytes) -> bytes | None:  # noqa: C901 - one dispatch
        text = data.decode("latin-1")
        head = text[:1]
        if head == "?":
            await self._wait_parked()
            return self.stop_reply()
        if head == "g":
            hart = self._hart(self.g_hart)
            return "".join(_le(self.registers.read(hart, n)) for n in range(PC_REGNUM + 1)).encode()
        if head == "G":
            hart = self._hart(self.g_hart)
            body = text[1:]
            if len(body) < 16 * (PC_REGNUM + 1):
                raise PacketError("G packet too short")
            for n in range(PC_REGNUM + 1):
                self.registers.write(hart, n, _from_le(body[16 * n : 16 * n + 16]))
            return b"OK"
        if head == "p":
            regnum = int(text[1:], 16)
            if not self.registers.exists(regnum):
                return b"E00"
            return _le(self.registers.read(self._hart(self.g_hart), regnum)).encode()
        if head == "P":
            number, _, value = text[1:].partition("=")
            regnum = int(number, 16)
            if not self.registers.exists(regnum) or len(value) != 16:
                return b"E00"
            self.registers.write(self._hart(self.g_hart), regnum, _from_le(value))
            return b"OK"
        if head == "m":
            address, length = (int(part, 16) for part in text[1:].split(","))
            contents = self.read_memory(address, min(length, MAX_READ))
            if not contents and length:
                return b"E14"  # EFAULT
            return contents.hex().encode()
        if head == "M":
            where, _, hexdata = text[1:].partition(":")
            address, length = (int(part, 16) for part in where.split(","))
            contents = bytes.fromhex(hexdata)
            if len(contents) != length:
                raise PacketError("M length and data differ")
            return b"OK" if self.write_memory(address, contents) else b"E14"
        if head in ("Z", "z"):
            z_type, address, kind = (int(part, 16) for part in text[1:].split(";")[0].split(","))
            if z_type > 4:
                return b""
            if head == "Z":
                return self._insert(z_type, address, kind)
            return self._remove(z_type, address, kind)
        if head in ("c", "s"):
            if len(text) > 1:
                self._hart(self.g_hart).pc = int(text[1:], 16)
            return await self._go("s" if head == "s" else "c", self.g_hart)
        if head == "H":
            thread = _thread(text[2:])
            if thread is not None and thread >= len(self.machine.harts):
                return b"E00"
            if text[1:2] == "g":
                self.g_hart = thread if thread is not None else self.g_hart
            return b"OK"
        if head == "T":
            thread = _thread(text[1:])
            return b"OK" if thread is not None and thread < len(self.machine.harts) else b"E00"
        if head == "k":
            self._kill()
            return None
        if head == "D":
            return b"OK"  # the session ends after the reply; _disconnected resumes the run
        if text.startswith("vCont?"):
            return b"vCont;c;C;s;S"
        if text.startswith("vCont;"):
            return await self._vcont(text[6:])
        if text.startswith("vKill"):
            self._kill_after_reply = True  # the run must not end before gdb has its OK
            return b"OK"
        if text.startswith("vMustReplyEmpty"):
            return b""
        if head in ("q", "Q"):
            return self._query(text)
        return b""

    def _query(self, text: str) -> bytes:
        if text.startswith("qSupported"):
            return (
                f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;QStartNoAckMode+;multiprocess+"
            ).encode()
        if text == "QStartNoAckMode":
            self.no_ack = True
            return b"OK"
        if text.startswith("qXfer:features:read:"):
            annex, _, span = text[len("qXfer:features:read:") :].partition(":")
            if annex != "target.xml":
                return b"E00"
            offset, length = (int(part, 16) for part in span.split(","))
            piece = self.xml[offset : offset + min(length, PACKET_SIZE - 16)]
            more = offset + len(piece) < len(self.xml)
            return (b"m" if more else b"l") + piece
        if text == "qfThreadInfo":
            return ("m" + ",".join(f"p1.{h.hartid + 1:x}" for h in self.machine.harts)).encode()
        if text == "qsThreadInfo":
            return b"l"
        if text == "qC":
            return f"QCp1.{self.g_hart + 1:x}".encode()
        if text == "qAttached":
            return b"1"
        if text.startswith("qThreadExtraInfo,"):
            thread = _thread(text[len("qThreadExtraInfo,") :])
            if thread is None or thread >= len(self.machine.harts):
                return b"E00"
            hart = self.machine.harts[thread]
            return f"hart {thread} {hart.mode}-mode {_run_state(hart)}".encode().hex().encode()
        if text.startswith("qRcmd,"):
            command = bytes.fromhex(text[len("qRcmd,") :]).decode("utf-8", "replace")
            return self.monitor(command).encode().hex().encode()
        return b""

    async def _go(self, action: str, hart: int) -> bytes | None:
        if self.machine.exit_status is not None:
            return self.stop_reply()
        await self._wait_parked()
        self.reply_pending = True
        self._resume_machine("step" if action == "s" else "continue", hart)
        return None

    async def _vcont(self, actions: str) -> bytes | None:
        """``vCont;s:2;c``: all-stop, so a step of one hart is what happens (the others stay
        stopped); otherwise everything continues."""
        step: int | None = None
        for action in actions.split(";"):
            verb, _, thread_text = action.partition(":")
            if verb[:1] not in ("c", "C", "s", "S"):
                raise PacketError(f"vCont action {action!r}")
            if verb[:1] in ("s", "S"):
                thread = _thread(thread_text) if thread_text else self.g_hart
                step = self.g_hart if thread is None else thread
                if step >= len(self.machine.harts):
                    return b"E00"
                break
        if step is not None:
            return await self._go("s", step)
        # gdb steps RISC-V code in software: a breakpoint at the next instruction, then
        # vCont;c:TID for that thread alone.  That breakpoint is for the hart's own context,
        # whatever VM is selected, so no hit is filtered until the next stop.
        _, _, thread_text = actions.partition(":")
        self.single_thread_resume = ";" not in actions and _thread(thread_text) is not None
        return await self._go("c", self.g_hart)

    def _kill(self) -> None:
        self.machine.power_off(0, "killed by gdb")
        self.reply_pending = False
        self._resume_machine("kill")
        self.machine.notify()

    async def _wait_parked(self) -> None:
        while not self.parked and self.machine.exit_status is None and not self.ended:
            self._request_stop(self.stop.signal if self.stop_requested else SIGINT)
            with trio.move_on_after(0.05):
                await self._parked.wait()

    def _hart(self, index: int) -> Hart:
        return self.machine.harts[index]

    # ---- monitor -----------------------------------------------------------------------
    def monitor(self, command: str) -> str:
        words = command.split()
        if words in (["info", "harts"], ["harts"]):
            lines = []
            for hart in self.machine.harts:
                lines.append(
                    f"hart {hart.hartid}: pc {hart.pc & (2**64 - 1):#x} {hart.mode}-mode "
                    f"V={int(hart.state[L.VIRT])} priv={int(hart.state[L.PRIV])} "
                    f"{_run_state(hart)}"
                )
            return "\n".join(lines) + "\n"
        if words == ["stats"]:
            stats = self.machine.statistics()
            counts = sorted(self.machine.exit_counts.items())
            exits = ", ".join(f"{name} {count}" for name, count in counts) or "none"
            return (
                f"instructions retired: {stats['instructions']}\n"
                f"exceptions: {stats['exceptions']}, interrupts: {stats['interrupts']}, "
                f"tlb misses: {stats['tlb_misses']}\n"
                f"kernel exits: {exits}\n"
                f"breakpoints: {len(self.breakpoints)}, watchpoints: {len(self.watches)}\n"
            )
        if len(words) == 2 and words[0] == "phys" and words[1] in ("on", "off"):
            self.phys = words[1] == "on"
            return f"memory is {'physical' if self.phys else 'virtual'}\n"
        if words == ["phys"]:
            return f"phys {'on' if self.phys else 'off'}\n"
        if words == ["info", "vms"]:
            return self._info_vms()
        if len(words) == 2 and words[0] == "vm":
            return self._select_vm(words[1])
        if words == ["help"] or not words:
            return _MONITOR_HELP
        return f"unknown monitor command {command.strip()!r}; try 'monitor help'\n"

    def _info_vms(self) -> str:
        plans = self._plans()
        if not plans:
            return "no VMs: the machine does not run rvh's hypervisor (rvh run --hyp)\n"
        from rvh.hyp import STATS_ADDRESS, STATS_SIZE, read_stats

        page = self.machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE)
        stats = {vm.index: vm for vm in read_stats(page)}
        lines = []
        for plan in plans:
            vm = stats.get(plan.index)
            state = "not started" if vm is None else f"{vm.state}, exits {vm.counters['exits']}"
            selected = " (selected)" if self.vm == plan.index else ""
            lines.append(
                f"vm {plan.index} ({plan.name}, {plan.spec.path}): virt={plan.spec.virt}, "
                f"vcpus {plan.spec.vcpus}, RAM {plan.spec.memory >> 20} MiB at host "
                f"{plan.host_base:#x}, VMID {vmid_of_vm(plan.index)}: {state}{selected}"
            )
        return "\n".join(lines) + "\n"

    def _select_vm(self, which: str) -> str:
        if which in ("off", "none", "host"):
            self.vm = None
            return "memory and breakpoints use the hart's own translation\n"
        plans = self._plans()
        if not plans:
            return "no VMs: the machine does not run rvh's hypervisor (rvh run --hyp)\n"
        if not which.isdigit() or int(which) >= len(plans):
            return f"no vm {which}: there are {len(plans)} (monitor info vms)\n"
        self.vm = int(which)
        return (
            f"vm {self.vm}: memory is its guest view, breakpoints and watchpoints stop only "
            f"in it (V=1, VMID {vmid_of_vm(self.vm)})\n"
        )


_MONITOR_HELP = (
    "info harts   pc, privilege and V of every hart\n"
    "stats        instructions, traps and kernel exits so far\n"
    "phys on|off  memory accesses use physical addresses (on) or the hart's translation\n"
    "info vms     the hypervisor's VMs (rvh run --hyp)\n"
    "vm N|off     use VM N's translation; breakpoints set now stop only in that VM\n"
)


def vmid_of_vm(index: int) -> int:
    """The VMID rvh's hypervisor gives VM ``index`` (firmware/hyp/gstage.c: id + 1)."""
    return index + 1


def _run_state(hart: Hart) -> str:
    if hart.state[L.HALTED]:
        return "halted"
    if hart.state[L.WFI]:
        return "wfi"
    return "active"


def _thread(text: str) -> int | None:
    """A hart index from a thread id (``2``, or ``p1.2`` with multiprocess): None for 0 or
    -1 (any, all)."""
    tid = text.split(".")[-1] if text.startswith("p") else text
    if tid in ("0", "-1", ""):
        return None
    value = int(tid, 16)
    if value <= 0:
        return None
    return value - 1


def _le(value: int) -> str:
    return (value & (2**64 - 1)).to_bytes(8, "little").hex()


def _from_le(text: str) -> int:
    return int.from_bytes(bytes.fromhex(text), "little")


def _signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >> 63 else value


def _is_socket(path: str) -> bool:
    import stat

    return stat.S_ISSOCK(os.stat(path).st_mode)

"""Live migration over TCP: ``rvh run ... --migrate-to tcp:HOST:PORT`` on the source and
``rvh run --incoming tcp:HOST:PORT`` on the destination (QEMU's spellings), over trio streams.

Pre-copy (Clark et al., "Live Migration of Virtual Machines", NSDI 2005): while the guest runs,
the source sends its memory in rounds, each round the pages that changed since the previous
one; once a round is small (``CONVERGED_PAGES``) or ``MAX_ROUNDS`` have gone, the harts stop
at the next kernel-call boundary, the devices finish their requests, and the last changed
pages and the machine's state (a VM file's sections, :mod:`rvh.snapshot`) follow; the
destination checks them exactly as a restore checks a file and resumes.  The source exits
with status 0 and says what it cost: rounds, bytes, downtime (from stopping the harts to the
last byte sent) and total time.

Which pages changed, the emulator says: dirty logging (:mod:`rvh.dirty`) marks every page a
hart, a page-table walk or a device writes, by write-protecting the TLB's store tags, so the
kernel's fast store path is the same whether a migration runs or not.

The stream is messages of a 4-byte tag and a u64 length: ``HELO`` (magic, memory bytes),
``PAGE`` (u32 count, u32 page numbers, the pages), ``DONE`` (the VM file before its RAM).
"""

from __future__ import annotations

import struct
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import trio

from rvh.cpu import layout as L
from rvh.dirty import DirtyLog
from rvh.errors import ConfigError, LoadError

if TYPE_CHECKING:
    from rvh.machine import Machine

MESSAGE = struct.Struct("<4sQ")
MIGRATION_MAGIC = b"RVHMIG01"
PAGE = L.PAGE_SIZE
CONVERGED_PAGES = 64  # a round this small: stop and copy the rest
MAX_ROUNDS = 30
CONNECT_SECONDS = 30.0  # the destination may still be starting
# a message goes out in pieces of this size, and while one is stuck (the destination reads
# slower than the guest runs: a busy host) the harts wait for it after each slice
SEND_PIECE = 1 << 20


class MigrationError(LoadError):
    """The migration could not be received (status 125, nothing runs)."""


def parse_address(option: str, text: str) -> tuple[str, int]:
    """``tcp:HOST:PORT`` -> (host, port)."""
    kind, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "tcp" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{option} {text}: expected tcp:HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass
class MigrationReport:
    address: str
    rounds: list[int] = field(default_factory=list)  # pages sent per round
    bytes_sent: int = 0
    downtime: float = 0.0
    seconds: float = 0.0
    paced: float = 0.0  # seconds the harts waited for the link during the pre-copy

    def line(self) -> str:
        return (
            f"migrated to {self.address}: {len(self.rounds)} rounds "
            f"({', '.join(str(n) for n in self.rounds)} pages), "
            f"{self.bytes_sent / 2**20:.1f} MiB sent, downtime {self.downtime * 1000:.1f} ms, "
            f"total {self.seconds:.2f} s, guest paced {self.paced * 1000:.1f} ms"
        )


class Outgoing:
    """The source's side: the stream, the dirty log, the figures."""

    def __init__(self, machine: Machine, address: tuple[str, int]) -> None:
        self.machine = machine
        self.address = address
        self.report = MigrationReport(f"tcp:{address[0]}:{address[1]}")
        self.stream: trio.SocketStream | None = None
        self.dirty = DirtyLog(machine)
        self.start = 0.0
        self.pieces_sent = 0
        self.sending = False
        self._piece_went = trio.Event()

    async def precopy(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Connect (before the harts start: the destination hears of every run), then send
        rounds until they are small, then ask the harts to stop."""
        self.start = time.perf_counter()
        deadline = trio.current_time() + CONNECT_SECONDS
        host, port = self.address
        while True:
            try:
                self.stream = await trio.open_tcp_stream(host, port)
                break
            except OSError as error:
                if trio.current_time() > deadline:
                    self.machine.migration_failed(f"cannot connect ({error.strerror or error})")
                    task_status.started()
                    return
                await trio.sleep(0.1)
        memory = self.machine.bus.memory
        await self._send(b"HELO", MIGRATION_MAGIC + struct.pack("<Q", len(memory)))
        task_status.started()
        # round 1: every non-zero page, with logging on from the moment they are copied
        self.dirty.start()
        words = memory.view(np.uint64).reshape(-1, PAGE // 8)
        await self._send_pages(np.flatnonzero(words.any(axis=1)).astype(np.uint32))
        for _ in range(MAX_ROUNDS - 1):
            await trio.sleep(0.005)  # the guest runs on and dirties pages
            if await self._send_pages(self.dirty.collect()) <= CONVERGED_PAGES:
                break
        self.machine.stop_for_migration(self)

    async def finish(self) -> None:
        """The harts are stopped and the devices idle: the last pages and the state."""
        from rvh.snapshot import vm_file_prefix

        stopped = time.perf_counter()
        await self._send_pages(self.dirty.stop())
        prefix, _ = vm_file_prefix(self.machine)
        # the destination opens the disks and binds the UDP netdevs' ports next: let go of
        # them (and the disks' locks) first
        from rvh.devices.virtio import VirtioBlk, VirtioNet

        for device in self.machine.virtio:
            if isinstance(device, VirtioBlk):
                device.image.close()
            elif isinstance(device, VirtioNet):
                device.backend.close()
        for pv_device in self.machine.pv_devices:
            pv_device.close()  # its image or its link, as above
        await self._send(b"DONE", prefix)
        assert self.stream is not None
        await self.stream.aclose()
        now = time.perf_counter()
        self.report.downtime = now - stopped
        self.report.seconds = now - self.start

    async def _send_pages(self, pages: np.ndarray) -> int:
        """Send these pages as they are now (copied before the first await, so a store after
        it marks the page for the next round)."""
        data = self.machine.bus.memory.reshape(-1, PAGE)[pages]
        payload = struct.pack("<I", len(pages)) + pages.astype("<u4").tobytes() + data.tobytes()
        self.report.rounds.append(len(pages))
        await self._send(b"PAGE", payload)
        return len(pages)

    async def _send(self, tag: bytes, payload: bytes) -> None:
        assert self.stream is not None
        message = memoryview(MESSAGE.pack(tag, len(payload)) + payload)
        self.sending = True
        try:
            for offset in range(0, len(message), SEND_PIECE):
                await self.stream.send_all(message[offset : offset + SEND_PIECE])
                self.pieces_sent += 1
                self._piece_went.set()
                self._piece_went = trio.Event()
        finally:
            self.sending = False
            self._piece_went.set()  # a hart waiting in pace goes on, whatever happened
            self._piece_went = trio.Event()
        self.report.bytes_sent += len(message)

    async def pace(self, seen: int) -> int:
        """Called by the harts' loop after each slice during the pre-copy, with what it last
        returned: while a message is being sent and no piece of it went since the last slice,
        wait for one.  So a guest runs at most one slice per piece when the destination is
        slow to read (a loaded host) and the migration still converges before the guest
        ends, as QEMU's auto-converge throttles a guest that outruns its link; on an idle
        link nothing waits.  Waiting changes wall time only, never what the guest computes."""
        if self.sending and self.pieces_sent == seen:
            start = time.perf_counter()
            await self._piece_went.wait()
            self.report.paced += time.perf_counter() - start
        return self.pieces_sent


# ---- the destination ---------------------------------------------------------------------
def receive(address: tuple[str, int]) -> tuple[bytes, np.ndarray]:
    """Listen, take one migration, return the VM file's prefix and the memory."""
    try:
        return trio.run(_receive, address)
    except OSError as error:
        host, port = address
        raise MigrationError(f"--incoming tcp:{host}:{port}: {error.strerror or error}") from None


async def _receive(address: tuple[str, int]) -> tuple[bytes, np.ndarray]:
    host, port = address
    listeners = await trio.open_tcp_listeners(port, host=host)
    try:
        stream = await listeners[0].accept()
    finally:
        for listener in listeners:
            await listener.aclose()
    where = f"--incoming tcp:{host}:{port}"
    async with stream:
        buffer = bytearray()

        async def message() -> tuple[bytes, bytes]:
            while True:
                if len(buffer) >= MESSAGE.size:
                    tag, length = MESSAGE.unpack_from(buffer)
                    if tag not in (b"HELO", b"PAGE", b"DONE"):
                        raise MigrationError(f"{where}: not an rvh migration")
                    if length > (1 << 36):
                        raise MigrationError(f"{where}: the source sent a {length}-byte message")
                    if len(buffer) >= MESSAGE.size + length:
                        payload = bytes(buffer[MESSAGE.size : MESSAGE.size + length])
                        del buffer[: MESSAGE.size + length]
                        return tag, payload
                chunk = await stream.receive_some(1 << 20)
                if not chunk:
                    raise MigrationError(f"{where}: the source went away before the end")
                buffer.extend(chunk)

        tag, payload = await message()
        if tag != b"HELO" or payload[:8] != MIGRATION_MAGIC or len(payload) != 16:
            raise MigrationError(f"{where}: not an rvh migration")
        (size,) = struct.unpack_from("<Q", payload, 8)
        if not size or size % PAGE or size > (16 << 30) + (1 << 20):
            raise MigrationError(f"{where}: a {size}-byte memory")
        memory = np.zeros(size, dtype=np.uint8)
        pages_view = memory.reshape(-1, PAGE)
        while True:
            tag, payload = await message()
            if tag == b"DONE":
                return payload, memory
            if tag != b"PAGE" or len(payload) < 4:
                raise MigrationError(f"{where}: unexpected message {tag!r}")
            (count,) = struct.unpack_from("<I", payload)
            if len(payload) != 4 + count * (4 + PAGE):
                raise MigrationError(f"{where}: a page message of the wrong length")
            pages = np.frombuffer(payload, dtype="<u4", count=count, offset=4)
            if count and int(pages.max()) >= len(pages_view):
                raise MigrationError(f"{where}: a page outside memory")
            data = np.frombuffer(payload, dtype=np.uint8, offset=4 + 4 * count)
            pages_view[pages] = data.reshape(count, PAGE)


def restore_incoming(address: tuple[str, int], **options: object) -> Machine:
    """Receive a migration and build the machine, checked as a VM file is."""
    from rvh.snapshot import read_vm_file, restore_machine

    prefix, memory = receive(address)
    with tempfile.NamedTemporaryFile(prefix="rvh-incoming-", suffix=".rvh") as state:
        state.write(prefix)
        state.flush()
        vm = read_vm_file(state.name, memory=memory)
        vm.path = f"--incoming tcp:{address[0]}:{address[1]}"
        return restore_machine(vm, **options)  # type: ignore[arg-type]

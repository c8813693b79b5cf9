"""Dirty logging (rvh/dirty.py): every page a hart, a page-table walk or a device writes while
logging is on is reported, and logging leaves the run itself unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from rvh.cli import _booted_machine, build_parser
from rvh.cpu import layout as L
from rvh.devices.virtio.queue import GuestMemory
from rvh.dirty import DirtyLog
from rvh.machine import Machine
from tests.support import GUESTS, require_guest


def booted(*argv: str) -> Machine:
    args = build_parser().parse_args(["run", "--serial", "null", *argv])
    return _booted_machine(args)


def run_until(machine: Machine, steps: int) -> None:
    """Run the machine's own loop until its instruction count reaches ``steps``."""
    machine.exit_status = None
    machine.config.max_instructions = steps
    machine.run_sync()
    assert machine.steps == steps, machine.exit_reason


def written_pages(before: np.ndarray, after: np.ndarray) -> set[int]:
    pages_before = before.reshape(-1, L.PAGE_SIZE)
    pages_after = after.reshape(-1, L.PAGE_SIZE)
    return set(np.flatnonzero((pages_before != pages_after).any(axis=1)).tolist())


def guest(relative: str) -> str:
    return str(require_guest(GUESTS / relative))


@pytest.mark.parametrize(
    "argv, start, stop",
    [
        # AMOs and LR/SC in M-mode
        (("--memory", "16M", guest("isa/rv64a.elf")), 200, 2_500),
        # S-mode with its Sv39 page tables: the walk's A/D updates
        (("--memory", "16M", "--sbi", guest("smode/sv39.elf")), 20_000, 150_000),
        # the hypervisor's stores and a VM's two-stage walks
        (("--hyp", "--guest", guest("smode/sv39.elf")), 100_000, 400_000),
    ],
    ids=["amo", "sv39", "hyp"],
)
def test_every_written_page_is_marked(argv, start, stop):
    machine = booted(*argv)
    run_until(machine, start)
    log = DirtyLog(machine)
    log.start()
    ram = machine.bus.ram
    before = ram.copy()
    run_until(machine, (start + stop) // 2)
    first = set(log.collect().tolist())
    middle = ram.copy()
    run_until(machine, stop)
    second = set(log.stop().tolist())
    assert written_pages(before, middle) <= first
    assert written_pages(middle, ram) <= second
    # and the log is a small superset, not "everything"
    assert second and len(second) < len(ram) // L.PAGE_SIZE // 4
    assert not machine.machine[L.M_DIRTY_LOG]
    protected = [
        h.tlb[L.TLB_TAG_WRITE :: L.TLB_FIELDS] & L.TLB_DIRTY_PROTECT for h in machine.harts
    ]

    assert not any(tags.any() for tags in protected)


def test_logging_leaves_the_run_and_its_statistics_unchanged():
    """The same run in the same kernel calls, with and without logging (and a collect, which
    write-protects every store tag again, after each call)."""
    runs = []
    for logging in (False, True):
        machine = booted("--memory", "16M", "--sbi", guest("smode/sv39.elf"))
        run_until(machine, 10_000)
        log = DirtyLog(machine)
        if logging:
            log.start()
        for steps in range(20_000, 120_001, 10_000):
            run_until(machine, steps)
            if logging:
                log.collect()
        if logging:
            log.stop()
        runs.append(machine)
    plain, logged = runs
    assert np.array_equal(plain.bus.memory, logged.bus.memory)
    for mine, theirs in zip(plain.harts, logged.harts, strict=True):
        # TLB misses and every counter agree; only the count of instructions the general
        # path ran differs (a protected store leaves the fast loop once), which no statistic
        # reports
        mine.state[L.GENERAL_PATH] = theirs.state[L.GENERAL_PATH] = 0
        assert np.array_equal(mine.state, theirs.state)
    assert plain.exit_counts == logged.exit_counts


def test_device_writes_are_marked():
    machine = booted("--memory", "16M", guest("hello/hello.elf"))
    log = DirtyLog(machine)
    log.start()
    memory = GuestMemory(machine.bus)
    memory.write(machine.bus.ram_base + 0x5000 + 4090, b"across a page boundary")
    machine.bus.write_bytes(machine.bus.ram_base + 0x9000, b"htif")
    assert log.collect().tolist() == [5, 6, 9]
    assert log.collect().tolist() == []
    memory.write(machine.bus.ram_base + 0x7000, b"x")
    assert log.stop().tolist() == [7]
    memory.write(machine.bus.ram_base + 0x8000, b"after")  # logging is off: nothing to mark
    assert not machine.machine[L.DIRTY_BITMAP :].any()


def test_page_table_accessed_bit_updates_are_marked():
    """An S-mode load through an Sv39 leaf whose A bit is clear: the walk sets A, and the
    page-table page is the only page written."""
    from rvh.config import RAM_BASE, MachineConfig
    from rvh.cpu.exits import Exit
    from tests.support import assemble

    root = RAM_BASE + 0x10000
    code = assemble(f"""
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
        li t0, (8 << 60) | ({root} >> 12)
        csrw satp, t0
        sfence.vma
        la t0, supervisor
        csrw mepc, t0
        li t0, 1 << 11
        csrs mstatus, t0
        mret
    supervisor:
        li t1, {RAM_BASE + 0x200000}
        ld t2, 0(t1)
        wfi
    """)
    machine = Machine(MachineConfig(memory=16 << 20), output=lambda _: None)
    machine.machine[L.M_MTIMECMP] = -1
    machine.bus.write_bytes(RAM_BASE, code)
    leaf = ((RAM_BASE >> 12) << 10) | 0b1111  # V R W X, A and D clear: a gigapage
    machine.bus.write_u64(root + 8 * 2, leaf)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    log = DirtyLog(machine)
    log.start()
    assert hart.run(1000) == Exit.WFI
    assert hart.state[L.PRIV] == L.PRIV_S
    assert machine.bus.read_u64(root + 8 * 2) & 0x40  # A set by the walk
    assert log.stop().tolist() == [0x10]


def test_a_page_written_only_by_dma_is_migrated():
    """Pre-copy has sent everything; then a device writes a page no hart touches: the last
    round carries exactly that page, and the destination's memory is the source's."""
    import socket

    import trio

    from rvh.migration import Outgoing, _receive

    machine = booted("--memory", "16M", guest("hello/hello.elf"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    outgoing = Outgoing(machine, ("127.0.0.1", port))
    target = machine.bus.ram_base + 0xA0_0000
    payload = bytes(range(256)) * 16

    async def migrate() -> tuple[bytes, np.ndarray]:
        received: list[tuple[bytes, np.ndarray]] = []
        async with trio.open_nursery() as nursery:

            async def destination() -> None:
                received.append(await _receive(("127.0.0.1", port)))

            nursery.start_soon(destination)
            await outgoing.precopy()  # no hart runs: the second round is empty
            GuestMemory(machine.bus).write(target, payload)  # virtio DMA
            await outgoing.finish()
        return received[0]

    prefix, memory = trio.run(migrate)
    assert prefix.startswith(b"RVHVM")
    assert outgoing.report.rounds[1:] == [0, 1]
    assert memory[0xA0_0000:0xA0_1000].tobytes() == payload
    assert np.array_equal(memory, machine.bus.memory)

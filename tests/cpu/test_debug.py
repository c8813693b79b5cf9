"""The kernel's side of gdb's breakpoints and watchpoints (rvh/cpu/debug.py): exact stops,
before the instruction, whatever path (fast loop or general) would have run it."""

from __future__ import annotations

from support import RAM_BASE, assemble_with_symbols

from rvh.cpu import layout as L
from rvh.cpu.exits import Exit
from rvh.cpu.hart import Hart
from rvh.machine import Machine

DATA = RAM_BASE + 0x2000  # its own page, away from the code

PROGRAM = f"""
    li t0, {DATA:#x}
    li a0, 0
loop:
    addi a0, a0, 1
    addi a1, a0, 100
bp:
    addi a2, a0, 200
    sd a0, 8(t0)
    ld a3, 16(t0)
    li t1, 5
    blt a0, t1, loop
done:
    wfi
"""


def _machine() -> tuple[Machine, Hart, dict[str, int]]:
    code, symbols = assemble_with_symbols(PROGRAM)
    machine = Machine(output=lambda _: None)
    machine.machine[L.M_MTIMECMP] = -1  # no timer interrupt
    machine.bus.write_bytes(RAM_BASE, code)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    return machine, hart, symbols


def _break_at(machine: Machine, *addresses: int) -> None:
    machine.machine[L.M_BREAKPOINTS] = len(addresses)
    for i, address in enumerate(addresses):
        machine.machine[L.M_BREAK_ADDR + i] = address


def _watch(machine: Machine, start: int, end: int, kind: int) -> None:
    machine.machine[L.M_WATCHES] = 1
    base = L.M_WATCH_BASE
    machine.machine[base + L.WATCH_START] = start
    machine.machine[base + L.WATCH_END] = end
    machine.machine[base + L.WATCH_KIND] = kind
    for hart in machine.harts:
        hart.flush_tlb()  # as the stub does: watched pages lose their fast tags


def _step_over(machine: Machine, hart: Hart) -> None:
    saved = machine.machine[L.M_BREAKPOINTS], machine.machine[L.M_WATCHES]
    machine.machine[L.M_BREAKPOINTS] = machine.machine[L.M_WATCHES] = 0
    assert hart.run(1) == Exit.BUDGET
    machine.machine[L.M_BREAKPOINTS], machine.machine[L.M_WATCHES] = saved
    hart.flush_tlb()


def test_no_breakpoints_no_exits() -> None:
    machine, hart, symbols = _machine()
    assert hart.run(10_000) == Exit.WFI
    assert hart.pc == symbols["done"] + 4
    assert hart.x(10) == 5


def test_a_breakpoint_stops_before_its_instruction_every_time() -> None:
    machine, hart, symbols = _machine()
    # warm the decode cache and TLB, so the fast loop would run straight through the page
    assert hart.run(10_000) == Exit.WFI
    plain = hart.instret
    hart.reset(RAM_BASE)
    _break_at(machine, symbols["bp"])
    for iteration in range(1, 6):
        assert hart.run(10_000) == Exit.BREAKPOINT
        assert hart.pc == symbols["bp"]
        assert hart.x(10) == iteration and hart.x(11) == iteration + 100
        assert hart.x(12) == (iteration - 1 + 200 if iteration > 1 else 0)  # not executed
        _step_over(machine, hart)
        assert hart.x(12) == iteration + 200
    assert hart.run(10_000) == Exit.WFI
    assert hart.instret == plain  # stopping retired nothing twice and skipped nothing


def test_a_breakpoint_on_another_page_costs_the_page_nothing() -> None:
    machine, hart, symbols = _machine()
    _break_at(machine, RAM_BASE + 0x10_0000)
    assert hart.run(10_000) == Exit.WFI
    assert hart.x(10) == 5


def test_a_write_watch_stops_before_the_store() -> None:
    machine, hart, symbols = _machine()
    machine.bus.write_u64(DATA + 8, 0x55)
    _watch(machine, DATA + 12, DATA + 13, L.WATCH_WRITES)  # one byte inside the sd's eight
    assert hart.run(10_000) == Exit.WATCHPOINT
    assert hart.pc == symbols["bp"] + 4  # the sd, not executed
    assert machine.bus.read_u64(DATA + 8) == 0x55
    assert hart.state[L.DEBUG_WATCH_HIT] == 1
    assert hart.state[L.DEBUG_WATCH_ADDR] == DATA + 8
    hart.state[L.DEBUG_WATCH_HIT] = 0
    _step_over(machine, hart)
    assert machine.bus.read_u64(DATA + 8) == 1
    # the ld of DATA + 16 on the same page does not touch it; the next round's sd does
    assert hart.run(10_000) == Exit.WATCHPOINT
    assert hart.x(10) == 2 and hart.pc == symbols["bp"] + 4


def test_a_read_watch_ignores_stores_and_stops_before_the_load() -> None:
    machine, hart, symbols = _machine()
    machine.bus.write_u64(DATA + 16, 0x1234)
    _watch(machine, DATA + 8, DATA + 24, L.WATCH_READS)
    assert hart.run(10_000) == Exit.WATCHPOINT
    assert hart.pc == symbols["bp"] + 8  # the ld; the sd before it went by
    assert machine.bus.read_u64(DATA + 8) == 1
    assert hart.x(13) == 0  # not loaded yet
    _step_over(machine, hart)
    assert hart.x(13) == 0x1234


def test_a_watch_beside_the_accesses_never_fires() -> None:
    machine, hart, symbols = _machine()
    _watch(machine, DATA, DATA + 8, L.WATCH_READS | L.WATCH_WRITES)
    assert hart.run(10_000) == Exit.WFI
    assert hart.x(10) == 5 and machine.bus.read_u64(DATA + 8) == 5


CALLS = """
.option norvc
    li s1, 0
loop:
    addi s1, s1, 1
    call far
    li t1, 4
    blt s1, t1, loop
done:
    wfi
.balign 4096
far:
    addi a0, a0, 3
bp:
    addi a0, a0, 1
    ret
"""


def test_a_breakpoint_in_a_page_entered_by_a_call_stops_every_call() -> None:
    # once the page's fetch translation is in the TLB, neither the fast loop nor the tier's
    # code (which change pages by the TLB) may run into it past the breakpoint: the page
    # keeps a slow fetch tag.  Stepped off as the stub does (rvh/gdb/stub.py, _step): the
    # step fetches with no breakpoint set, and the TLB is flushed after it
    code, symbols = assemble_with_symbols(CALLS)
    machine = Machine(output=lambda _: None)
    machine.machine[L.M_MTIMECMP] = -1
    machine.bus.write_bytes(RAM_BASE, code)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    _break_at(machine, symbols["bp"])
    hart.flush_tlb()  # as the stub does when breakpoints change
    for call in range(1, 5):
        assert hart.run(10_000) == Exit.BREAKPOINT
        assert hart.pc == symbols["bp"]
        assert hart.x(9) == call and hart.x(10) == 4 * (call - 1) + 3
        machine.machine[L.M_BREAKPOINTS] = 0
        assert hart.run(1) == Exit.BUDGET
        _break_at(machine, symbols["bp"])
        hart.flush_tlb()
    assert hart.run(10_000) == Exit.WFI
    assert hart.x(10) == 16

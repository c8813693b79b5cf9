"""Machine-level behaviour: idle time skipping, deadlock detection, instruction limits."""

import pytest
from support import needs_toolchain, run_asm

from rvh.config import RAM_BASE, MachineConfig
from rvh.cpu import layout as L
from rvh.errors import EXIT_DEADLOCK, EXIT_INSN_LIMIT
from rvh.machine import Machine

pytestmark = needs_toolchain


def machine_with(code: bytes, **config):
    from support import assemble

    machine = Machine(MachineConfig(memory=16 << 20, **config), output=lambda _: None)
    machine.bus.write_bytes(RAM_BASE, assemble(code))
    machine.set_boot(RAM_BASE)
    return machine


WAIT_ONE_SECOND = """
    li t0, 0x200bff8          # mtime
    ld t1, 0(t0)
    li t2, 10000000           # one second at 10 MHz
    add t1, t1, t2
    li t0, 0x2004000          # mtimecmp hart 0
    sd t1, 0(t0)
    li t0, 0x80               # MTIE
    csrw mie, t0
1:  wfi
    csrr t0, mip
    andi t0, t0, 0x80
    beqz t0, 1b
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
"""


def test_wfi_skips_virtual_time_to_the_timer():
    machine = machine_with(WAIT_ONE_SECOND)
    result = machine.run_sync()
    assert result.status == 0
    assert result.seconds < 5  # a virtual second costs no host second (run time, no compile)
    hart = machine.harts[0]
    assert hart.state[L.TIME_NS] >= 1_000_000_000
    assert hart.instret < 1000  # the guest executed a handful of instructions, not a spin


def test_wfi_with_nothing_to_wake_it_is_a_deadlock():
    machine = machine_with("csrw mie, zero\n1: wfi\nj 1b\n")
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK
    assert "deadlock" in result.reason


def test_instruction_limit():
    machine = machine_with("1: j 1b\n", max_instructions=12345)
    result = machine.run_sync()
    assert result.status == EXIT_INSN_LIMIT
    assert result.instructions == 12345


@pytest.mark.parametrize("counter", ["minstret", "mcycle"])
def test_instruction_limit_holds_when_the_guest_rewinds_its_counters(counter):
    # the guest's view of minstret/mcycle is writable (3.3.1); --max-insns counts what the
    # emulator executed, so a guest zeroing its counters in a loop still stops at the limit
    machine = machine_with(f"1: csrw {counter}, zero\nj 1b\n", max_instructions=20_000)
    result = machine.run_sync()
    assert result.status == EXIT_INSN_LIMIT
    assert result.instructions == 20_000


def test_instruction_limit_stops_a_trap_storm():
    # mtvec at unmapped address 0: every fetch there faults back to it and nothing retires;
    # the limit counts trapped instructions too, so the run still ends
    machine = machine_with("csrw mtvec, zero\njr zero\n", max_instructions=50_000)
    result = machine.run_sync()
    assert result.status == EXIT_INSN_LIMIT
    assert machine.steps == 50_000
    assert result.instructions == 6 + 2  # the boot ROM's reset code, the csrw and the jump
    assert machine.harts[0].state[L.LAST_CAUSE] == 1  # instruction access fault


def test_time_advances_one_tick_per_100_instructions():
    s = run_asm("""
        csrr a0, time
        li t0, 1000
    1:  addi t0, t0, -1
        bnez t0, 1b
        csrr a1, time
    """)
    # 2002 instructions between the reads: 20 ticks of the 10 MHz timebase
    assert s.x(11) - s.x(10) == 20


def test_realtime_idle_sleeps_until_the_timer():
    fifth_of_a_second = WAIT_ONE_SECOND.replace("li t2, 10000000", "li t2, 2000000")
    machine = machine_with(fifth_of_a_second, realtime=True)
    machine.run_sync()  # compile/load the kernel outside the measurement
    machine = machine_with(fifth_of_a_second, realtime=True)
    result = machine.run_sync()
    assert result.status == 0
    assert 0.19 <= result.seconds < 3  # (its CPU time: tools/bench_idle.py, not a unit test)


def test_a_failing_device_ends_the_run_cleanly():
    from rvh.errors import EXIT_EMULATOR_ERROR

    class Broken:
        name = "broken"

        async def serve(self, *, task_status):
            task_status.started()
            raise OSError("host device vanished")

    machine = machine_with("1: j 1b\n")
    machine.virtio.append(Broken())  # served like a device; fails once running
    machine.virtio[-1].close = lambda: None
    machine.virtio[-1].busy = lambda: False
    result = machine.run_sync()
    assert result.status == EXIT_EMULATOR_ERROR
    assert result.reason == "broken failed: OSError: host device vanished"


# the guest says it is running (a '!' on the console), then spins at `spin`
SAY_RUNNING_THEN_SPIN = """
    li t0, 0x10000000
    li t1, '!'
    sb t1, 0(t0)
spin:
    j spin
"""


def interrupted_run(
    tmp_path, *options: str, signal_number: int = 2, ignore_sigint: bool = False
) -> tuple[int, list[str], int]:
    """``rvh run`` a guest that spins, and once it is running press Ctrl-C (or send
    ``signal_number``); (exit status, stderr lines, the address of the spin loop)."""
    import signal
    import subprocess
    import sys
    import time

    from support import ROOT, build_elf

    elf = build_elf(SAY_RUNNING_THEN_SPIN, tmp_path / "guest.elf")
    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", *options, str(elf)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        if ignore_sigint
        else None,
    )
    assert child.stdout.read(1) == b"!"  # imported, kernel loaded, running
    time.sleep(1)  # past the store that printed it, spinning
    child.send_signal(signal.Signals(signal_number))
    _, err = child.communicate(timeout=30)
    from rvh.loader import read_elf

    return child.returncode, err.decode().splitlines(), read_elf(elf).symbols["spin"]


def test_ctrl_c_ends_the_run_with_status_130(tmp_path):
    status, lines, _ = interrupted_run(tmp_path)
    assert status == 130
    assert lines == ["rvh: interrupted"]


def test_ctrl_c_with_stats_says_where_the_harts_were(tmp_path):
    # a guest spinning on one jump: where the hart is tells what it waits for
    status, lines, spin = interrupted_run(tmp_path, "--stats")
    assert status == 130
    assert lines[0] == f"rvh: interrupted; hart 0 at {spin:#x} in M-mode"
    assert "ended by:             interrupted (Ctrl-C)" in lines


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    import signal

    status, lines, _ = interrupted_run(tmp_path, signal_number=signal.SIGTERM)
    assert (status, lines) == (143, ["rvh: terminated"])
    status, lines, spin = interrupted_run(tmp_path, "--stats", signal_number=signal.SIGTERM)
    assert status == 143
    assert lines[0] == f"rvh: terminated; hart 0 at {spin:#x} in M-mode"
    assert "ended by:             terminated (SIGTERM)" in lines


def test_sigterm_still_ends_a_run_that_ignores_sigint(tmp_path):
    # a background job of a script ignores SIGINT: SIGTERM cannot travel as SIGINT there, so
    # it keeps its default action instead of being lost
    import signal

    status, lines, _ = interrupted_run(tmp_path, signal_number=signal.SIGTERM, ignore_sigint=True)
    assert (status, lines) == (-signal.SIGTERM, [])


def test_a_trap_loop_ends_the_run_like_a_deadlock():
    # mtvec = 0 is no memory: the fetch of the handler faults back to the handler, forever
    machine = machine_with("csrw mtvec, zero\njr zero\n")
    result = machine.run_sync()
    assert result.status == EXIT_DEADLOCK
    assert result.reason == (
        "trap loop: hart 0 retired nothing in 1,000,000 instructions, re-taking instruction "
        "access fault at pc 0x0 in M-mode"
    )
    assert result.instructions == 6 + 2  # the boot ROM's reset code, the csrw and the jump
    assert machine.steps <= 3_000_000  # found within a few slices


def test_a_trap_handler_that_retires_is_no_trap_loop():
    # an ecall storm whose handler runs (and returns to the ecall): busy, but not stuck
    machine = machine_with(
        "la t0, handler\ncsrw mtvec, t0\n1: ecall\nj 1b\n.balign 4\nhandler: mret\n",
        max_instructions=3_000_000,
    )
    result = machine.run_sync()
    assert result.status == EXIT_INSN_LIMIT


def test_a_process_that_runs_machine_after_machine_holds_only_a_few():
    # a machine's objects refer to one another: dropped, it waits for a full collection,
    # which Python makes rarely; and a run freezes what exists (gc.freeze) only while it runs
    import gc

    from support import GUESTS, require_guest

    from rvh import machine as M

    hello = require_guest(GUESTS / "hello" / "hello.elf")
    gc.collect()
    before = len(M._MACHINES)
    for _ in range(3 * M.MACHINES_BEFORE_COLLECT):
        output = bytearray()
        machine = Machine(MachineConfig(tier="interp"), output=output.extend)
        machine.load(str(hello))
        assert machine.run_sync().status == 0 and b"Hello" in output
        assert gc.get_freeze_count() == 0
    del machine
    assert len(M._MACHINES) <= before + M.MACHINES_BEFORE_COLLECT + 1  # (+ the one replaced)

"""The baseline compiler (rvh/tier/baseline.py): x86-64 code written directly from a region,
which must retire exactly what the interpreter does.  Most of these run test_tier's exactness
tests again with the tier giving regions baseline code and never promoting them to LLVM, so
that every translated instruction ran baseline code (``RVH_TEST_BASELINE=1`` runs the whole of
test_tier so; its statistics tests then fail by design, its exactness tests must not)."""

import platform

import numpy as np
import pytest
import test_tier
from support import GUESTS, require_guest, run_asm
from test_tier import (
    SELF_MODIFYING,
    assert_same_snippet,
    attach_tier,
    break_in_a_page_chained_into,
    random_program,
    run_calls_across_pages,
    run_guest,
    run_program,
)

from rvh.config import RAM_BASE
from rvh.tier import baseline, engine
from rvh.tier.baseline import (
    R9,
    R10,
    R11,
    R12,
    R13,
    R15,
    RAX,
    Assembler,
    CodeArena,
    region_code,
)
from rvh.tier.engine import QUICK
from rvh.tier.translate import (
    MAX_BLOCK,
    Instruction,
    Node,
    Op,
    continuation,
    straight_line_length,
)

pytestmark = pytest.mark.skipif(not baseline.available(), reason="baseline code is x86-64")


@pytest.fixture
def in_baseline(monkeypatch):
    """test_tier's machines give hot regions baseline code and keep it (no promotion)."""
    monkeypatch.setattr(test_tier, "BASELINE_TESTS", True)


# ---- the encodings ------------------------------------------------------------------------
def encoded(write) -> bytes:
    assembler = Assembler()
    write(assembler)
    return assembler.finish()


@pytest.mark.parametrize(
    "write, expected",
    [
        # (each checked against objdump's disassembly when written)
        (lambda a: a.load(RAX, R12, 0x50), "49 8b 44 24 50"),  # mov rax, [r12+0x50]
        (lambda a: a.store(R10, R12, 0x28), "4d 89 54 24 28"),  # mov [r12+0x28], r10
        (lambda a: a.store(RAX, R12, 0x108), "49 89 84 24 08 01 00 00"),
        (lambda a: a.load_sized(Op.LD, R10, R13, RAX), "4d 8b 54 05 00"),
        (lambda a: a.load_sized(Op.LBU, R10, R13, RAX), "45 0f b6 54 05 00"),
        (lambda a: a.load_sized(Op.LW, R10, R13, RAX), "4d 63 54 05 00"),
        (lambda a: a.store_sized(1, R11, R13, RAX), "45 88 5c 05 00"),  # mov [r13+rax], r11b
        (lambda a: a.store_sized(2, R9, R13, RAX), "66 45 89 4c 05 00"),
        (lambda a: a.move_immediate(RAX, -(2**31)), "48 c7 c0 00 00 00 80"),
        (lambda a: a.move_immediate(RAX, 0x8000_1024), "b8 24 10 00 80"),
        (lambda a: a.move_immediate(R10, 0x1_2345_6789), "49 ba 89 67 45 23 01 00 00 00"),
        (lambda a: a.compare_memory_byte(R15, R10), "43 80 3c 17 00"),  # cmp byte [r15+r10], 0
        (lambda a: a.jump_indirect(R11, 0x20450), "41 ff a3 50 04 02 00"),
        (lambda a: a.divide(R9, signed=True), "48 99 49 f7 f9"),  # cqo; idiv r9
        (lambda a: a.divide(R9, signed=False, w=False), "31 d2 41 f7 f1"),  # xor edx; div r9d
        (lambda a: a.set_flag(0x2, RAX), "0f 92 c0 0f b6 c0"),  # setb al; movzx eax, al
    ],
)
def test_the_assembler_encodes_as_x86_64_does(write, expected):
    assert encoded(write).hex(" ") == expected


def test_jumps_are_relative_to_the_next_instruction():
    a = Assembler()
    a.jump_if(0x5, "there")  # 6 bytes
    a.ret()
    a.bind("there")
    a.ret()
    assert a.finish().hex(" ") == "0f 85 01 00 00 00 c3 c3"


def test_a_region_starting_with_an_instruction_it_does_not_write_gets_no_code():
    pc = RAM_BASE
    mulhsu = (Instruction(Op.MULHSU, 5, 6, 7, 0, 4, 0),)
    assert region_code((Node(pc, mulhsu),), 0) is None
    add = (Instruction(Op.ADDI, 5, 5, 0, 1, 4, 0),)
    assert region_code((Node(pc, add),), 0)


def test_the_host_must_be_x86_64(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert not baseline.available()


# ---- exactness: test_tier's programs and guests in baseline code ---------------------------
@pytest.mark.parametrize("seed", range(24))
def test_a_random_program_ends_the_same_in_baseline_code(in_baseline, seed):
    source, regs = random_program(seed)
    interp, _ = run_program(source, regs, "interp")
    jit, tier = run_program(source, regs, "jit")
    assert interp.pc == interp.end + 4
    assert_same_snippet(interp, jit)
    assert tier is not None
    stats = tier.statistics()
    assert stats["blocks_baseline"] > 0 and stats["instructions"] > 0


@pytest.mark.parametrize("budget", [1, 7, 100, 333, 1000, 1001, 1500])
def test_a_budget_stops_baseline_code_at_the_same_instruction(in_baseline, budget):
    test_tier.test_a_budget_stops_translated_code_at_the_same_instruction(budget)


@pytest.mark.parametrize("seed", range(6))
def test_amos_in_baseline_code_have_the_interpreters_results(in_baseline, seed):
    test_tier.test_amos_run_inside_blocks_with_the_interpreters_results(seed)


def test_a_broken_lr_sc_pair_fails_in_baseline_code_as_on_the_interpreter(in_baseline):
    test_tier.test_an_lr_sc_pair_broken_by_a_store_fails_inside_blocks_as_on_the_interpreter()


def test_a_trap_in_a_regions_second_node_leaves_exact_state_in_baseline_code(in_baseline):
    test_tier.test_a_trap_in_a_regions_second_node_leaves_exact_state()


@pytest.mark.parametrize("deadline", [200, 201, 333])
def test_a_timer_interrupt_arrives_at_the_same_instruction_in_baseline_code(in_baseline, deadline):
    test_tier.test_a_timer_interrupt_arrives_at_the_same_instruction_inside_a_region(deadline)


def test_a_store_over_baseline_code_retranslates_it(in_baseline):
    stats = test_tier.rewritten_loop(SELF_MODIFYING)[2]
    assert stats["blocks_baseline"] >= 2  # the loop before and after the store


@pytest.mark.parametrize(
    "name, sbi",
    [
        ("bench/intmem", False),
        ("bench/recursion", False),
        ("bench/bytes", False),
        ("isa/rv64m", False),
        ("isa/rv64a", False),
        ("isa/rv64i_mem", False),
        ("hext/hstage", False),
        ("smode/sv39", True),
        ("smode/smp", True),
        ("smode/timer", True),
    ],
)
def test_a_guest_runs_the_same_in_baseline_code(in_baseline, name, sbi):
    elf = require_guest(GUESTS / f"{name}.elf")
    (r1, out1, m1, _), (r2, out2, m2, tier) = (
        run_guest(elf, "interp", sbi),
        run_guest(elf, "jit", sbi, synchronous=True),
    )
    assert out2 == out1
    assert (r2.status, r2.reason, r2.instructions) == (r1.status, r1.reason, r1.instructions)
    for h1, h2 in zip(m1.harts, m2.harts, strict=True):
        assert np.array_equal(test_tier.comparable(h2.state), test_tier.comparable(h1.state))
    assert np.array_equal(m2.bus.memory, m1.bus.memory)
    assert tier.statistics()["blocks_baseline"] > 0


# ---- what is particular to baseline code --------------------------------------------------


def test_baseline_code_chains_to_code_in_another_page():
    stats = run_calls_across_pages(baseline=True)
    assert stats["blocks_baseline"] > 0


def test_a_breakpoint_stops_baseline_code_chaining_into_its_page():
    tier = break_in_a_page_chained_into(baseline=True)
    assert tier.statistics()["blocks_baseline"] > 0


def test_hot_baseline_code_is_promoted_to_quick_code():
    source, regs = random_program(5)
    interp, _ = run_program(source, regs, "interp")
    promoted, tier = run_program_promoting(source, regs)
    assert_same_snippet(interp, promoted)
    stats = tier.statistics()
    assert stats["blocks_baseline"] > 0 and stats["blocks_compiled"] > 0
    # the loop's region counted its entries in baseline code, and its quick code replaced it
    assert QUICK in {code.level for code in tier.code.values()}
    assert not any(
        key in tier.hot_baseline for key, code in tier.code.items() if code.level is QUICK
    )


def run_program_promoting(source: str, regs: dict):
    original = test_tier.attach_tier

    def promoting(machine, **options):
        options.update(baseline=True, promote_after=20, optimize_after=None)
        return original(machine, **options)

    test_tier.attach_tier = promoting
    try:
        return run_program(source, regs, "jit")
    finally:
        test_tier.attach_tier = original


def test_a_full_arena_leaves_regions_to_llvm(monkeypatch):
    monkeypatch.setattr(baseline, "DEFAULT_ARENA_LIMIT", 0)
    source, regs = random_program(2)
    interp, _ = run_program(source, regs, "interp")
    monkeypatch.setattr(test_tier, "BASELINE_TESTS", True)
    jit, tier = run_program(source, regs, "jit")
    assert_same_snippet(interp, jit)
    stats = tier.statistics()
    assert stats["blocks_baseline"] == 0 and stats["blocks_compiled"] > 0


def test_the_arena_hands_out_aligned_executable_memory_up_to_its_limit():
    arena = CodeArena(limit=baseline.ARENA_BYTES)
    first = arena.place(b"\xc3" * 10)
    second = arena.place(b"\xc3")
    assert first is not None and second == first + 16
    assert arena.place(b"\0" * baseline.ARENA_BYTES) is None  # larger than a piece
    # filling the one piece allowed: the next does not fit
    while arena.place(b"\xc3" * 4096) is not None:
        pass
    assert arena.written > baseline.ARENA_BYTES - 8192


SSTATUS_IN_S_MODE = """
.option norvc
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f                    # all of memory, RWX, for S-mode
    csrw pmpcfg0, t0
    la t0, smode
    csrw mepc, t0
    li t0, (1 << 11) | (3 << 13)   # MPP = S, FS dirty: SD must follow
    csrw mstatus, t0
    mret
smode:
    li t6, 400
    li a3, 2
loop:
    csrrci a1, sstatus, 2     # interrupts off, as local_irq_save: stays in the code
    addi a0, a0, 1
    csrr a2, sstatus
    csrw sscratch, a0
    csrrc a4, sstatus, a3     # clearing SIE again (already clear): stays too
    csrrs a5, sscratch, zero
    andi t1, a0, 63
    bnez t1, 1f
    csrs sstatus, a3          # enabling: leaves for the interpreter
1:  addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


def test_sstatus_accesses_in_s_mode_run_in_baseline_code(in_baseline):
    interp, jit, tier = test_tier.run_both(SSTATUS_IN_S_MODE, {})
    assert interp.pc == interp.end + 4
    assert interp.csr("sscratch") == 400
    stats = tier.statistics()
    assert stats["blocks_baseline"] > 0
    assert stats["instructions"] > 0.8 * interp.hart.instret


# ---- when regions get baseline code ----------------------------------------------------------
def straight_loop(body: int, passes: int) -> str:
    """A loop whose body is one straight line of ``body`` ALU instructions (as ChaCha20's
    rounds are), run ``passes`` times."""
    lines = [f"li t6, {passes}", "loop:"]
    for i in range(body):
        lines.append(f"xori a{i % 6}, a{(i + 1) % 6}, {i % 2000}")
    lines += ["addi t6, t6, -1", "bnez t6, loop", "j __snippet_end"]
    return "\n".join(lines)


def run_with_baseline(source: str, **options):
    tiers = []

    def setup(machine):
        tiers.append(attach_tier(machine, threshold=2, baseline=True, **options))

    jit = run_asm(source, max_insns=1_000_000, setup=setup)
    interp = run_asm(source, max_insns=1_000_000)
    assert_same_snippet(interp, jit)
    return jit, tiers[0].statistics()


@pytest.mark.parametrize("continuations", [16, 0])
def test_a_long_straight_line_gets_baseline_code_all_at_once(monkeypatch, continuations):
    # 300 instructions in a line: regions of 64, the first hot at the loop's head after 75
    # entries (400 * 12 / 64); the others count entries only once the piece before them has
    # code, so one at a time they would each wait 75 more
    monkeypatch.setattr(engine, "MAX_CONTINUATIONS", continuations)
    jit, stats = run_with_baseline(straight_loop(300, 300), compile_after=400)
    share = stats["instructions"] / jit.hart.instret
    if continuations:
        assert stats["blocks_baseline"] >= 5 and share > 0.7, (stats, share)
    else:
        assert share < 0.45, (stats, share)


@pytest.mark.parametrize("body, compiled", [(48, True), (6, False)])
def test_a_long_straight_line_waits_for_fewer_entries(body, compiled):
    # hot at 2 entries, then compile_after (400) * LONG_LINE (12) / its length: 100 entries
    # for 48 instructions, 400 for 6; the loop runs 150 times
    assert engine.LONG_LINE == 12
    _, stats = run_with_baseline(straight_loop(body, 150), compile_after=400)
    assert (stats["blocks_baseline"] > 0) == compiled, stats


def test_continuation_is_where_a_cut_straight_line_goes_on():
    pc = RAM_BASE + 0x100
    add = Instruction(Op.ADDI, 10, 10, 0, 1, 4, 0x00150513)
    line = (Node(pc, (add,) * MAX_BLOCK),)
    assert continuation(line) == pc + 4 * MAX_BLOCK
    assert continuation((Node(pc, (add,) * (MAX_BLOCK - 1)),)) is None  # not cut
    jump = Instruction(Op.JAL, 0, 0, 0, -8, 4, 0)
    assert continuation((Node(pc, (add,) * (MAX_BLOCK - 1) + (jump,)),)) is None
    # a line past a branch not taken, cut after it
    branch = Instruction(Op.BNE, 0, 10, 0, 64, 4, 0)
    first = Node(pc, (add,) * 31 + (branch,))
    second = Node(pc + 128, (add,) * 32)
    assert continuation((first, second)) == pc + 256
    # the code after it in the region already: none
    assert continuation((first, second, Node(pc + 256, (add,)))) is None
    # ending at its page's end: the kernel counts entries where a page starts
    at_end = RAM_BASE + 0x1000 - 4 * MAX_BLOCK
    assert continuation((Node(at_end, (add,) * MAX_BLOCK),)) is None


def test_straight_line_length_counts_translated_instructions_up_to_a_branch():
    source = """
.option norvc
    li t6, 3
loop:
    addi a0, a0, 1
    slli a1, a0, 3
    xor a2, a1, a0
    add a3, a2, a1
    addi t6, t6, -1
    bnez t6, loop
    csrr a4, mscratch
    addi a5, a5, 1
    addi a5, a5, 1
    sfence.vma
    j __snippet_end
"""
    snippet = run_asm(source)
    cache = snippet.machine.bus.decode_cache
    assert straight_line_length(cache, 4) == 6  # from the loop's head, the branch included
    assert straight_line_length(cache, 12) == 4  # from its third instruction
    # a CSR access is translated (its region decides which); sfence.vma is not
    assert straight_line_length(cache, 28) == 3
    assert straight_line_length(cache, 40) == 0
    assert straight_line_length(cache, 0x10000) == 0  # never decoded

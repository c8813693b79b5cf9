"""The translating tier (--tier jit, rvh/tier) changes speed, never results: every guest and a
set of random programs end in the same state, with the same output and instruction counts, as
on the interpreter; budgets, self-modifying code and eviction included."""

import gc
import hashlib
import os
import random
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as llvm
import numpy as np
import pytest
from support import (
    GUESTS,
    ROOT,
    TIER_NOT_COMPARED,
    assemble_with_symbols,
    require_guest,
    run_asm,
)

from rvh.config import RAM_BASE, MachineConfig
from rvh.cpu import layout as L
from rvh.cpu.exits import Exit
from rvh.machine import Machine
from rvh.tier import engine
from rvh.tier.engine import (
    OPTIMIZED,
    QUICK,
    CodeCache,
    Tier,
    _Compiling,
    block_digest,
    compile_blocks,
    place_key,
    region_key,
)
from rvh.tier.layout import (
    COUNT_MASK,
    J_COUNTS,
    J_QUEUE,
    J_QUEUE_LEN,
    J_TABLE,
    J_THRESHOLD,
    JT_HOST,
    JT_SHIFT,
    TABLE_MASK,
)
from rvh.tier.translate import Instruction, Node, Op, read_region, region_ir

BASELINE_TESTS = bool(os.environ.get("RVH_TEST_BASELINE"))


def attach_tier(
    machine: Machine,
    threshold: int = 2,
    capacity: int = 8192,
    synchronous: bool = True,
    cache: CodeCache | None = None,
    optimize_after: int | None = 64,
    compile_after: int | None = None,
    slow_after: int | None = None,
    baseline: bool = False,
    promote_after: int = 1 << 62,
) -> Tier:
    """Switch ``machine`` to the jit tier, with a low threshold so that short runs translate,
    compiling synchronously (unless told) so that they do, and optimizing soon (unless
    told) so that both levels of code run."""
    tier = Tier(
        machine.bus.decode_cache,
        machine.machine,
        machine.bus.page_flags,
        threshold=threshold,
        capacity=capacity,
        synchronous=synchronous,
        cache=cache,
        optimize_after=optimize_after,
        compile_after=compile_after,
        slow_after=slow_after,
        baseline=baseline or BASELINE_TESTS,
        promote_after=promote_after,
    )
    machine.tier = tier
    for hart in machine.harts:
        hart.tier = tier
    return tier


def comparable(state: np.ndarray) -> np.ndarray:
    state = state.copy()
    state[TIER_NOT_COMPARED] = 0
    return state


# ---- whole guests, bare and on the built-in SBI -------------------------------------------
BARE = [
    "isa/rv64i",
    "isa/rv64i_mem",
    "isa/rv64m",
    "isa/rv64a",
    "isa/rv64c",
    "isa/zicsr",
    "isa/mtraps",
    "isa/rv64f",
    "isa/rv64d",
    "hello/hello",
    "hello/hello_picolibc",
    "htif/htif_hello",
    "htif/htif_fail",
    "bench/intmem",
    "bench/recursion",
    "bench/bytes",
    "hext/hstage",
    "hext/hvirt",
    "hext/hirq",
    "hext/hbench",
]
SBI = ["hello", "timer", "umode", "sv39", "sv48", "sbi", "smp", "opbench", "bench_sv39"]
LIMIT = 20_000_000  # the bench guests stop here, mid-run: that end state must agree too


def run_guest(elf, tier: str, sbi: bool, synchronous: bool = False, cache=None, limit=LIMIT):
    output = bytearray()
    harts = 2 if elf.stem == "smp" else 1
    config = MachineConfig(max_instructions=limit, firmware_traps=sbi, harts=harts, tier="interp")
    machine = Machine(config, output=output.extend)
    jit = None
    if tier == "jit":
        jit = attach_tier(
            machine, threshold=8, synchronous=synchronous, cache=cache, optimize_after=4096
        )
    if sbi:
        machine.load_sbi_payload(str(elf))
    else:
        machine.load(str(elf))
    result = machine.run_sync()
    return result, bytes(output), machine, jit


def assert_same_run(elf, sbi: bool, synchronous: bool = False) -> Tier:
    """Runs ``elf`` on both tiers (the jit tier compiling in its worker thread, as
    ``rvh run --tier jit`` does, unless ``synchronous``) and compares everything."""
    interp = run_guest(elf, "interp", sbi)
    jit = run_guest(elf, "jit", sbi, synchronous)
    (r1, out1, m1, _), (r2, out2, m2, tier) = interp, jit
    assert out2 == out1
    assert (r2.status, r2.reason, r2.instructions) == (r1.status, r1.reason, r1.instructions)
    for h1, h2 in zip(m1.harts, m2.harts, strict=True):
        assert np.array_equal(comparable(h2.state), comparable(h1.state))
    assert np.array_equal(m2.bus.memory, m1.bus.memory)
    assert tier is not None
    return tier


@pytest.mark.parametrize("name", BARE)
def test_bare_guest_runs_the_same_on_both_tiers(name):
    assert_same_run(require_guest(GUESTS / f"{name}.elf"), sbi=False)


@pytest.mark.parametrize("name", ["intmem", "recursion", "bytes"])
def test_nearly_all_of_a_bench_workload_runs_translated(name):
    tier = assert_same_run(GUESTS / "bench" / f"{name}.elf", sbi=False, synchronous=True)
    stats = tier.statistics()
    assert stats["instructions"] > LIMIT * 0.95
    # blocks chain to one another in compiled code: few returns to the interpreter
    assert stats["entries"] < stats["instructions"] / 100


@pytest.mark.parametrize("name", SBI)
def test_sbi_guest_runs_the_same_on_both_tiers(name):
    tier = assert_same_run(
        require_guest(GUESTS / "smode" / f"{name}.elf"), sbi=True, synchronous=True
    )
    assert tier.statistics()["blocks_compiled"] > 0


# ---- random programs -------------------------------------------------------------------
REGS = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "t0", "t1", "t2"]
EDGES = [0, 1, -1, 2**63 - 1, -(2**63), 2**31 - 1, -(2**31), 0xFFFFFFFF, 7, -7]
R_OPS = "add sub sll srl sra slt sltu xor or and addw subw sllw srlw sraw".split()
M_OPS = "mul mulh mulhsu mulhu div divu rem remu mulw divw divuw remw remuw".split()
I_OPS = "addi slti sltiu xori ori andi addiw".split()
SHIFTS = {"slli": 63, "srli": 63, "srai": 63, "slliw": 31, "srliw": 31, "sraiw": 31}
MEMORY = {"ld": 8, "sd": 8, "lw": 4, "lwu": 4, "sw": 4, "lh": 2, "lhu": 2, "sh": 2}
MEMORY.update({"lb": 1, "lbu": 1, "sb": 1})
BRANCHES = "beq bne blt bge bltu bgeu".split()


def random_body(rng: random.Random, length: int) -> list[str]:
    lines = []
    for _ in range(length):
        kind = rng.random()
        rd, a, b = rng.choice(REGS), rng.choice(REGS + ["zero"]), rng.choice(REGS + ["zero"])
        if kind < 0.3:
            lines.append(f"{rng.choice(R_OPS)} {rd}, {a}, {b}")
        elif kind < 0.45:
            lines.append(f"{rng.choice(M_OPS)} {rd}, {a}, {b}")
        elif kind < 0.6:
            lines.append(f"{rng.choice(I_OPS)} {rd}, {a}, {rng.randint(-2048, 2047)}")
        elif kind < 0.68:
            op = rng.choice(list(SHIFTS))
            lines.append(f"{op} {rd}, {a}, {rng.randint(0, SHIFTS[op])}")
        elif kind < 0.72:
            lines.append(f"lui {rd}, {rng.randint(0, 2**20 - 1)}")
        elif kind < 0.74:
            lines.append(f"auipc {rd}, {rng.randint(0, 2**20 - 1)}")
        elif kind < 0.9:
            op = rng.choice(list(MEMORY))
            size = MEMORY[op]
            # s1: a data page; s5: bytes beside the code, in its page
            base = rng.choice(["s1", "s1", "s5"])
            offset = rng.randrange(0, 64, size)
            register = rd if op.startswith("l") else a
            lines.append(f"{op} {register}, {offset}({base})")
        else:
            lines.append(f"{rng.choice(BRANCHES)} {a}, {b}, 1f")
            lines.append(f"{rng.choice(I_OPS)} {rd}, {a}, {rng.randint(-2048, 2047)}")
            lines.append("1:")
    return lines


def random_program(seed: int) -> tuple[str, dict[int, int]]:
    rng = random.Random(seed)
    body = random_body(rng, rng.randint(5, 40))
    source = "\n".join(
        [
            "li s1, 0x80100000",
            "la s5, beside",
            f"li t6, {rng.randint(20, 60)}",
            "loop:",
            *body,
            "addi t6, t6, -1",
            "bnez t6, loop",
            "j __snippet_end",
            ".balign 8",
            "beside: .space 64",
        ]
    )
    regs = {}
    for name_index in (10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 5, 6, 7):
        regs[name_index] = rng.choice(EDGES) if rng.random() < 0.5 else rng.getrandbits(64)
    return source, regs


def run_program(source, regs, tier: str, max_insns=200_000, capacity=8192, optimize_after=64):
    data = {0x8010_0000: bytes(random.Random(len(source)).getrandbits(8) for _ in range(64))}
    tiers: list[Tier] = []

    def setup(machine):
        if tier == "jit":
            tiers.append(attach_tier(machine, capacity=capacity, optimize_after=optimize_after))

    snippet = run_asm(
        source, regs=regs, data=data, max_insns=max_insns, setup=setup, expect_end=False
    )
    return snippet, (tiers[0] if tiers else None)


def assert_same_snippet(interp, jit):
    assert jit.hart.instret == interp.hart.instret
    assert jit.pc == interp.pc
    assert np.array_equal(comparable(jit.hart.state), comparable(interp.hart.state))
    assert np.array_equal(jit.machine.bus.memory, interp.machine.bus.memory)


def test_stores_beside_code_in_its_page_stay_in_the_region():
    # the page is flagged (it holds translated code): every store asks the module's
    # store_over_code, which finds no decoded instruction under it, so the loop stays in
    # its region instead of leaving at each store
    source = "\n".join(
        [
            "la s5, beside",
            "li t6, 2000",
            "loop:",
            "sd t6, 0(s5)",
            "sw t6, 8(s5)",
            "sb t6, 13(s5)",
            "addi t6, t6, -1",
            "bnez t6, loop",
            "j __snippet_end",
            ".balign 8",
            "beside: .space 64",
        ]
    )
    interp, _ = run_program(source, {}, "interp")
    jit, tier = run_program(source, {}, "jit")
    assert_same_snippet(interp, jit)
    assert tier is not None
    stats = tier.statistics()
    assert stats["instructions"] > 0.95 * jit.hart.instret
    assert stats["entries"] < 20, stats  # not one return to the interpreter per store
    assert stats["page_flushes"] == 0


@pytest.mark.parametrize("seed", range(24))
def test_a_random_program_ends_the_same_on_both_tiers(seed):
    source, regs = random_program(seed)
    interp, _ = run_program(source, regs, "interp")
    jit, tier = run_program(source, regs, "jit")
    assert interp.pc == interp.end + 4  # it finished
    assert_same_snippet(interp, jit)
    assert tier is not None and tier.statistics()["instructions"] > 0


@pytest.mark.parametrize("budget", [1, 7, 100, 333, 1000, 1001, 1500])
def test_a_budget_stops_translated_code_at_the_same_instruction(budget):
    # blocks never run past the kernel's limit: every cut point ends the same
    source, regs = random_program(1000)
    interp, _ = run_program(source, regs, "interp", max_insns=budget)
    jit, _ = run_program(source, regs, "jit", max_insns=budget)
    assert interp.hart.instret == budget
    assert_same_snippet(interp, jit)


def test_eviction_keeps_results_exact():
    source, regs = random_program(7)
    interp, _ = run_program(source, regs, "interp")
    jit, tier = run_program(source, regs, "jit", capacity=1)
    assert_same_snippet(interp, jit)
    assert tier is not None
    stats = tier.statistics()
    assert stats["blocks_evicted"] > 0 and stats["blocks_cached"] <= stats["blocks_compiled"]


SELF_MODIFYING = """
.option norvc
    li t6, 200
    li t5, 100
    la s1, patch
    lw s3, replacement
loop:
patch:
    addi a0, a0, 1
    addi t6, t6, -1
    bne t6, t5, 1f
    sw s3, 0(s1)       # from the 101st pass on, the loop adds 5
    fence.i
1:
    bnez t6, loop
    j __snippet_end
replacement:
    addi a0, a0, 5
"""


def run_both(source: str, registers: dict, **options):
    """``source`` on both tiers, which must end the same; returns (interp, jit, the tier)."""
    interp, _ = run_program(source, registers, "interp", **options)
    jit, tier = run_program(source, registers, "jit", **options)
    assert_same_snippet(interp, jit)
    assert tier is not None
    return interp, jit, tier


def rewritten_loop(source: str):
    """Runs a loop that, from its 101st pass on, adds 5 instead of 1 (a store over its own
    code and fence.i) on both tiers; returns both runs and the jit tier's statistics.  Only
    the loop's page is dropped, not the whole jump table."""
    interp, jit, tier = run_both(source, {})
    assert interp.x(10) == 100 * 1 + 100 * 5
    stats = tier.statistics()
    assert stats["page_flushes"] >= 1 and stats["flushes"] == 0 and stats["instructions"] > 0
    return interp, jit, stats


def test_a_store_over_translated_code_retranslates_it():
    stats = rewritten_loop(SELF_MODIFYING)[2]
    assert stats["blocks_compiled"] >= 2  # the loop before and after the store


def test_a_python_write_over_translated_code_drops_it():
    # a loader or a device's DMA writing code (Bus.write_bytes) is a code write too
    source = "li t6, 50\nloop:\naddi a0, a0, 1\naddi t6, t6, -1\nbnez t6, loop\nj __snippet_end"
    jit, tier = run_program(source, {}, "jit")
    assert tier is not None and tier.statistics()["instructions"] > 0
    machine = jit.machine
    before = int(machine.machine[L.M_CODE_WRITES])
    machine.bus.write_bytes(0x8000_0000, machine.bus.read_bytes(0x8000_0000, 16))
    assert int(machine.machine[L.M_CODE_WRITES]) == before + 1
    # the write is logged by host page, for the kernel to drop that page's blocks only
    logged = L.M_CODE_PAGES + (before & L.CODE_PAGE_MASK)
    assert int(machine.machine[logged]) == 0  # host page 0: RAM's first page


# ---- system instructions inside blocks ----------------------------------------------------
CSR_LOOP = """
.option norvc
    li t6, 200
    li a5, 2
loop:
    csrw mscratch, a0           # a plain write
    csrr a1, mscratch
    csrrw a2, mepc, t6          # an xepc: bit 0 stays zero
    csrrs a3, mcause, a1
    csrrc a4, mtval, t6
    csrrci a6, mscratch, 5      # (sscratch and stval would share the kernel's cached
    csrrsi a7, mtval, 3         # legality slots with mcause and mepc: csr.remember_csr_read)
    csrrc s2, sstatus, a5       # SIE off (local_irq_save): stays in the block
    csrs sstatus, s2            # back on when it was on: leaves the block (interrupts)
    andi t0, t6, 1
    bnez t0, 1f
    csrs sstatus, a5            # on every other pass
1:
    addi a0, a0, 3
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


def test_csr_accesses_run_inside_blocks_with_the_interpreters_results():
    interp, jit, tier = run_both(CSR_LOOP, {10: 5})
    assert interp.pc == interp.end + 4
    assert interp.csr("mepc") == 0 and interp.csr("mscratch") == (5 + 3 * 199) & ~5
    # blocks go on past the CSR accesses: most of the loop runs translated (a block ending at
    # each of them would leave the rest of each pass to the interpreter)
    assert tier.statistics()["instructions"] > 0.6 * interp.hart.instret


TRAPPING_CSR = """
.option norvc
    la t0, handler
    csrw mtvec, t0
    la s4, faulting
    li t6, 100
loop:
    addi a0, a0, 1
    csrw mscratch, a0
faulting:
    csrw mhartid, a0            # read-only: an illegal instruction, mid-block
    addi a1, a1, 2
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
handler:
    addi s3, s3, 1
    csrr t1, mepc
    addi t1, t1, 4
    csrw mepc, t1
    mret
"""


@pytest.mark.parametrize("budget", [3_000, 1_234])
def test_a_trapping_csr_access_mid_block_is_precise(budget):
    interp, _ = run_program(TRAPPING_CSR, {}, "interp", max_insns=budget)
    jit, tier = run_program(TRAPPING_CSR, {}, "jit", max_insns=budget)
    assert_same_snippet(interp, jit)
    if budget == 3_000:
        assert interp.pc == interp.end + 4 and interp.x(19) == 100 and interp.x(11) == 200
    assert interp.x(19) > 0
    csrrw_mhartid_a0 = (0xF14 << 20) | (10 << 15) | (1 << 12) | 0x73
    assert jit.csr("mcause") == 2 and jit.csr("mtval") == csrrw_mhartid_a0
    assert jit.csr("mepc") in (jit.x(20), jit.x(20) + 4)  # the handler may have moved it
    assert tier is not None and tier.statistics()["instructions"] > 0


AMO_LOOP = """
.option norvc
    li s1, 0x80102000           # (0x80100000 shares a TLB set with the code page)
    addi s2, s1, 8
    addi s3, s1, 16
    addi s4, s1, 24
    addi s5, s1, 36
    li t6, 150
loop:
    ld s7, 40(s1)               # (only loads and stores fill the TLB for the page)
    sd s7, 48(s1)
    amoadd.w a1, a0, (s1)
    amoswap.d a2, a0, (s2)
    amomin.w a3, a1, (s3)
    amomaxu.w a4, a2, (s3)
    amominu.d a5, a3, (s4)
    amomax.d a6, a4, (s4)
    amoxor.w a7, t6, (s1)
    amoand.d t0, a1, (s2)
    amoor.w t1, a2, (s5)
    amomaxu.d t2, a0, (s2)
    amomin.d t3, a5, (s4)
    amominu.w t4, a7, (s5)
    amomax.w t5, a6, (s3)
    mul a0, a0, s6
    addi a0, a0, 77
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


@pytest.mark.parametrize("seed", range(4))
def test_amos_run_inside_blocks_with_the_interpreters_results(seed):
    rng = random.Random(seed)
    regs = {10: rng.choice(EDGES), 22: rng.getrandbits(64) | 1}
    interp, jit, tier = run_both(AMO_LOOP, regs)
    assert interp.pc == interp.end + 4
    assert tier.statistics()["instructions"] > 0.8 * interp.hart.instret


LR_SC_LOOP = """
.option norvc
    li s1, 0x80102000           # (0x80100000 shares a TLB set with the code page)
    addi s2, s1, 64
    li t6, 100
loop:
    ld s7, 40(s1)               # (only loads and stores fill the TLB for the page)
    sd s7, 48(s1)
    lr.d t0, (s1)
    addi t1, t0, 1
    sc.d t2, t1, (s1)           # pairs with its lr: stores, t2 = 0
    add a0, a0, t2
    lr.w t3, (s1)
    sw t6, 0(s1)                # another value: the pair is broken
    sc.w t4, t1, (s1)           # fails, t4 = 1, memory unchanged
    add a1, a1, t4
    lr.d t0, (s2)
    sc.d t5, t0, (s1)           # not the reserved address: fails
    add a2, a2, t5
    sc.d t5, t0, (s2)           # the reservation went with the last sc: fails
    add a3, a3, t5
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


def test_an_lr_sc_pair_broken_by_a_store_fails_inside_blocks_as_on_the_interpreter():
    interp, jit, tier = run_both(LR_SC_LOOP, {})
    assert interp.pc == interp.end + 4
    assert [interp.x(r) for r in (10, 11, 12, 13)] == [0, 100, 100, 100]
    assert tier.statistics()["instructions"] > 0.8 * interp.hart.instret


# ---- regions: exits from inside a loop's region are exact ---------------------------------
# a loop of three nodes; from the 350th pass on its second node loads from address 8, where
# nothing is mapped: the load's exit leaves the region mid-node and the interpreter takes
# the access fault, whose handler records it
TRAP_IN_SECOND_NODE = """
.option norvc
    la t0, handler
    csrw mtvec, t0
    li s1, 0x80100000
    li t6, 400
    li t5, 50
loop:
    addi a0, a0, 3
    andi t1, a0, 1
    beqz t1, 1f
    addi a1, a1, 5
1:  ld t2, 0(s1)
    add a2, a2, t2
    xor a5, a5, a2
    addi t6, t6, -1
    bne t6, t5, loop
    li s1, 8
    j loop
handler:
    csrr a3, mcause
    csrr a4, mepc
    csrr a6, mtval
    j __snippet_end
"""


def region_at(machine: Machine, label_pc: int):
    host = machine.bus.host_offset(label_pc, 4)
    assert host is not None
    return read_region(machine.bus.decode_cache, host, label_pc)


def test_a_trap_in_a_regions_second_node_leaves_exact_state():
    interp, _ = run_program(TRAP_IN_SECOND_NODE, {}, "interp")
    jit, tier = run_program(TRAP_IN_SECOND_NODE, {}, "jit")
    load = interp.x(14)  # mepc: the load, 4 instructions into the loop
    assert (interp.x(13), interp.x(16)) == (5, 8)  # a load access fault at address 8
    assert_same_snippet(interp, jit)
    assert tier is not None and tier.statistics()["instructions"] > 1000
    # the loop ran as one region, the load first in its second node
    region = region_at(jit.machine, load - 16)
    assert [node.pc for node in region][:2] == [load - 16, load]


# a timer interrupt (mtimecmp reached after about 20,000 instructions) arrives while the loop
# runs in its region: it is taken at the same instruction as on the interpreter
TIMER_IN_A_LOOP = """
.option norvc
    la t0, handler
    csrw mtvec, t0
    li t0, 0x80
    csrw mie, t0
    csrsi mstatus, 8
loop:
    addi a0, a0, 1
    andi t1, a0, 3
    bnez t1, 1f
    addi a1, a1, 7
1:  xor a2, a2, a0
    j loop
handler:
    csrr a3, mcause
    csrr a4, mepc
    csrw mie, zero     # so that the final wfi waits
    j __snippet_end
"""


@pytest.mark.parametrize("deadline", [200, 201, 333])
def test_a_timer_interrupt_arrives_at_the_same_instruction_inside_a_region(deadline):
    runs = []
    for tier_name in ("interp", "jit"):
        tiers: list[Tier] = []

        def setup(machine, tier_name=tier_name, tiers=tiers):
            machine.machine[L.M_MTIMECMP] = deadline  # mtime counts 100 instructions a tick
            if tier_name == "jit":
                tiers.append(attach_tier(machine))

        runs.append((run_asm(TIMER_IN_A_LOOP, max_insns=200_000, setup=setup), tiers))
    (interp, _), (jit, tiers) = runs
    assert interp.x(13) == (1 << 63) | 7  # machine timer interrupt
    assert RAM_BASE + 24 <= interp.x(14) < RAM_BASE + 48  # taken inside the loop
    assert_same_snippet(interp, jit)
    assert tiers[0].statistics()["instructions"] > 10_000


# the loop's second node holds an instruction that its third node rewrites on the 100th
# pass: the region is dropped and read again, and the loop goes on adding 5 instead of 1
REWRITE_SECOND_NODE = """
.option norvc
    li t6, 200
    li t5, 100
    la s1, patch
    lw s3, replacement
loop:
    addi a1, a1, 1
    andi t1, t6, 1
    beqz t1, 1f
    addi a2, a2, 2
1:
patch:
    addi a0, a0, 1
    addi t6, t6, -1
    bne t6, t5, 2f
    sw s3, 0(s1)
    fence.i
2:
    bnez t6, loop
    j __snippet_end
replacement:
    addi a0, a0, 5
"""


def test_a_store_over_a_regions_second_node_retranslates_it():
    interp, jit, stats = rewritten_loop(REWRITE_SECOND_NODE)
    assert stats["blocks_compiled"] >= 2 and stats["instructions"] > 1000
    # the region read after the store holds the new instruction in a node after the first
    patch = interp.x(9)  # s1: the patched instruction, 4 instructions into the loop
    region = region_at(jit.machine, patch - 16)
    assert region[0].pc == patch - 16
    node = next(node for node in region[1:] if node.pc == patch)
    assert node.instructions[0].imm == 5


def installed(tier: Tier, host: int) -> bool:
    """Whether the jump table holds a block starting at host offset ``host``."""
    slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
    return int(tier.jit[slot + JT_HOST]) == host


def installed_at(snippet, tier: Tier, address: int) -> bool:
    """Whether the jump table holds a block starting at physical ``address`` of the
    snippet's machine."""
    host = snippet.machine.bus.host_offset(address, 4)
    return host is not None and installed(tier, host)


# two loops on two pages, run twice; the second stores over its own code each pass, the
# first never
TWO_PAGES = """
.option norvc
first_page:
    li s2, 30
first:
    addi a0, a0, 1
    addi s2, s2, -1
    bnez s2, first
    j second_page
    .balign 4096
second_page:
    li t6, 30
    la s1, patch
    lw s3, replacement
    lw s4, original
    sw s4, 0(s1)
    fence.i
second:
patch:
    addi a1, a1, 1
    sw s3, 0(s1)       # from the second pass on the loop adds 3
    fence.i
    addi t6, t6, -1
    bnez t6, second
    bnez a2, __snippet_end
    li a2, 1
    la t0, first_page
    jr t0
original:
    addi a1, a1, 1
replacement:
    addi a1, a1, 3
"""


def test_a_store_over_code_drops_only_the_blocks_of_its_page():
    interp, jit, tier = run_both(TWO_PAGES, {})
    assert (interp.x(10), interp.x(11)) == (60, 2 * (1 + 29 * 3))
    stats = tier.statistics()
    assert stats["flushes"] == 0 and stats["page_flushes"] >= 2
    # every page flush was of the second page: the first loop's block stayed installed
    first = jit.machine.bus.host_offset(0x8000_0004, 4)
    assert first is not None and installed(tier, first)
    assert jit.machine.bus.page_flags[first >> 12] & L.PAGE_FLAG_TRANSLATED


# a loop, then a call to code 512 KiB further, whose decode-cache entries are the loop's (the
# cache is direct-mapped by host offset): decoding it evicts the loop's instructions, after
# which a store over them would not be seen in the decode cache.  Their blocks stay, and the
# page is flagged so that any store to it is reported (L.PAGE_FLAG_UNTRACKED).  After the
# second pass the loop's first instruction is rewritten, with no fence.i (this hart's stores
# reach its fetches in rvh, as the tier must keep them too); ``patch``: whether it is
ALIASED = """
.option norvc
    li t6, 4
outer:
    li t5, 20
inner:
    addi a0, a0, 1
    addi t5, t5, -1
    bnez t5, inner
    jal ra, far
    addi t6, t6, -1
    li t4, 2
    bne t6, t4, 1f
    beqz s1, 1f
    la t0, inner
    lw t1, replacement
    sw t1, 0(t0)
1:  bnez t6, outer
    j __snippet_end
replacement:
    addi a0, a0, 5
pad:
    .skip 0x80000 - (pad - inner)
far:
    addi a1, a1, 2
    addi a1, a1, 3
    addi a1, a1, 4
    addi a1, a1, 5
    ret
"""


def test_an_instruction_evicted_from_the_decode_cache_leaves_its_pages_blocks_installed():
    interp, jit, tier = run_both(ALIASED, {9: 0})
    assert (interp.x(10), interp.x(11)) == (80, 56)
    stats = tier.statistics()
    assert stats["page_flushes"] == 0 and stats["flushes"] == 0
    assert stats["instructions"] > 0
    inner = jit.machine.bus.host_offset(RAM_BASE + 8, 4)
    assert inner is not None and installed(tier, inner)
    flags = jit.machine.bus.page_flags[inner >> 12]
    assert flags & L.PAGE_FLAG_TRANSLATED and flags & L.PAGE_FLAG_UNTRACKED


def test_a_store_over_translated_code_no_longer_decoded_is_seen():
    interp, jit, tier = run_both(ALIASED, {9: 1})
    assert interp.x(10) == 2 * 20 + 2 * 20 * 5  # the last two passes add 5
    stats = tier.statistics()
    assert stats["page_flushes"] >= 1 and stats["instructions"] > 0


# a loop whose head a region cannot start at (blocks leave before a counter read), then one
# 32 KiB further, which shares its hotness counter (they are direct-mapped by host offset)
SHARED_COUNTER = """
.option norvc
    li t6, 40
a_loop:
    csrr a5, cycle
    addi t6, t6, -1
    bnez t6, a_loop
    li t6, 40
    j b_loop
pad:
    .skip 0x8000 - (pad - a_loop)
b_loop:
    addi a0, a0, 1
    addi t6, t6, -1
    bnez t6, b_loop
    j __snippet_end
"""


def test_a_hot_pc_no_region_can_start_at_does_not_keep_its_counter_from_others():
    interp, jit, tier = run_both(SHARED_COUNTER, {})
    assert interp.x(10) == 40
    assert installed_at(jit, tier, RAM_BASE + 0x8004)  # b_loop
    assert tier.statistics()["instructions"] > 0


# a loop whose head no region can start at (the fast loop does sfence.vma, no block holds it)
# and whose rest runs into the next page: that part is reached by no taken branch and no
# block's exit, only by running into its page
INTO_THE_NEXT_PAGE = """
.option norvc
    li t6, 40
    j loop
    .balign 4096
    .skip 4096 - 8
loop:
    sfence.vma
    addi a1, a1, 1
    addi a2, a2, 2
    addi a3, a3, 3
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


def test_code_entered_by_running_into_its_page_gets_a_block():
    interp, jit, tier = run_both(INTO_THE_NEXT_PAGE, {})
    assert (interp.x(12), interp.x(13)) == (80, 120)
    assert installed_at(jit, tier, RAM_BASE + 0x2000)


# the fast loop does sfence.vma, which no block holds: the block at the loop's head leaves
# before it, and the code after it goes on without a taken branch
AFTER_A_LEAVE = """
.option norvc
    li t6, 40
loop:
    addi a0, a0, 1
    sfence.vma
    addi a1, a1, 1
    addi a2, a2, 1
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
"""


def test_the_code_after_an_instruction_a_block_left_at_gets_a_block():
    interp, jit, tier = run_both(AFTER_A_LEAVE, {})
    assert (interp.x(10), interp.x(12)) == (40, 40)
    assert installed_at(jit, tier, RAM_BASE + 12)


# ---- compiling: two levels, batches, the on-disk code cache ----------------------------
@pytest.mark.parametrize("seed", [3, 11])
def test_quick_code_and_its_optimized_recompile_end_the_same(seed):
    source, regs = random_program(seed)
    interp, _ = run_program(source, regs, "interp")
    jit, tier = run_program(source, regs, "jit", optimize_after=4)
    assert_same_snippet(interp, jit)
    assert tier is not None
    stats = tier.statistics()
    assert stats["blocks_compiled"] > 0 and stats["blocks_optimized"] > 0
    # an optimized block replaces its quick code: the quick engines are freed
    assert stats["blocks_cached"] == stats["blocks_compiled"]


THREE_LOOPS = """
.option norvc
    li t6, 30
1:  addi a0, a0, 1
    addi t6, t6, -1
    bnez t6, 1b
    li t6, 30
2:  addi a1, a1, 3
    addi t6, t6, -1
    bnez t6, 2b
    li t6, 30
3:  xor a2, a2, a0
    addi t6, t6, -1
    bnez t6, 3b
    j __snippet_end
"""
LOOP_STARTS = [RAM_BASE + 4, RAM_BASE + 20, RAM_BASE + 36]


# three loops, each left by a jump: none is on another's straight line
THREE_LOOPS_APART = """
.option norvc
    li t6, 30
1:  addi a0, a0, 1
    addi t6, t6, -1
    bnez t6, 1b
    j 4f
4:  li t6, 30
2:  addi a1, a1, 3
    addi t6, t6, -1
    bnez t6, 2b
    j 5f
5:  li t6, 30
3:  xor a2, a2, a0
    addi t6, t6, -1
    bnez t6, 3b
    j __snippet_end
"""
APART_STARTS = [RAM_BASE + 4, RAM_BASE + 24, RAM_BASE + 44]


def queue(tier: Tier, pcs: list[int]) -> None:
    """What the kernel does when blocks get hot (their host offsets: RAM starts the memory)."""
    for i, pc in enumerate(pcs):
        tier.jit[J_QUEUE + 2 * i : J_QUEUE + 2 * i + 2] = (pc - RAM_BASE, pc)
    tier.jit[J_QUEUE_LEN] = len(pcs)


def test_blocks_hot_at_one_kernel_return_compile_as_one_module():
    interp, _ = run_program(THREE_LOOPS_APART, {}, "interp")
    machine, hart = interp.machine, interp.hart
    tier = attach_tier(machine, threshold=1000, optimize_after=None)
    for pc in APART_STARTS:
        assert read_region(machine.bus.decode_cache, pc - RAM_BASE, pc)  # decoded
    queue(tier, APART_STARTS)
    tier.service()
    stats = tier.statistics()
    assert (stats["batches"], stats["blocks_compiled"], len(tier.batches)) == (1, 3, 1)
    # run the program again: the loops run compiled, and it ends as on the interpreter
    hart.reset(RAM_BASE)
    hart.run(10_000)
    assert hart.pc == interp.end + 4 and tier.statistics()["instructions"] > 80
    assert (hart.x(10), hart.x(11), hart.x(12)) == (interp.x(10), interp.x(11), interp.x(12))


def test_a_pc_hot_inside_a_region_being_compiled_is_not_compiled_again():
    interp, _ = run_program(THREE_LOOPS, {}, "interp")
    tier = attach_tier(interp.machine, threshold=1000, optimize_after=None, synchronous=False)
    # the first loop's region holds the other two (its straight line): while it compiles,
    # they get hot too, and are left to it, their counts started again
    gate = threading.Event()
    assert tier.worker is not None
    tier.worker.submit(gate.wait)  # the worker is busy: the region stays in flight
    queue(tier, LOOP_STARTS[:1])
    tier.service()
    queue(tier, LOOP_STARTS[1:])
    for pc in LOOP_STARTS[1:]:
        tier.jit[J_COUNTS + (((pc - RAM_BASE) >> 1) & COUNT_MASK)] = 1000
    tier.service()
    gate.set()
    tier.finish()
    assert [pc for _, pc, _ in tier.code] == LOOP_STARTS[:1]
    assert tier.statistics()["batches"] == 1
    assert all(
        tier.jit[J_COUNTS + (((pc - RAM_BASE) >> 1) & COUNT_MASK)] == 0 for pc in LOOP_STARTS[1:]
    )
    tier.close()


def test_a_pc_inside_a_compiled_region_gets_its_own_only_when_hot_twice():
    interp, _ = run_program(THREE_LOOPS, {}, "interp")
    tier = attach_tier(interp.machine, threshold=1000, optimize_after=None)
    queue(tier, LOOP_STARTS[:1])
    tier.service()  # compiled and installed (synchronous)
    # the second loop, in the first's region, gets hot (a kernel call resumed in it, say):
    # the region runs it, so it waits for a second time
    inner = LOOP_STARTS[1]
    counter = J_COUNTS + (((inner - RAM_BASE) >> 1) & COUNT_MASK)
    tier.jit[counter] = 1000
    queue(tier, [inner])
    tier.service()
    assert [pc for _, pc, _ in tier.code] == LOOP_STARTS[:1] and tier.jit[counter] == 0
    queue(tier, [inner])
    tier.service()
    assert sorted(pc for _, pc, _ in tier.code) == LOOP_STARTS[:2]


def test_a_hot_loops_region_holds_the_loops_on_its_straight_line():
    interp, _ = run_program(THREE_LOOPS, {}, "interp")
    cache = interp.machine.bus.decode_cache
    region = read_region(cache, LOOP_STARTS[0] - RAM_BASE, LOOP_STARTS[0])
    nodes = {node.pc: node for node in region}
    # each loop is a node that branches back to itself: an edge inside the region
    assert all(pc in nodes and pc in nodes[pc].targets() for pc in LOOP_STARTS)
    assert region[0].pc == LOOP_STARTS[0]
    # the region ends at the jump to the end (its target, a wfi, is not translated)
    assert region[-1].instructions[-1].op == Op.JAL


# the first loop leaves by a taken branch to the second (not on its straight line)
LOOP_THEN_LOOP = """
.option norvc
    li t6, 30
1:  addi a0, a0, 1
    addi t6, t6, -1
    beqz t6, 2f
    j 1b
2:  li t6, 30
3:  addi a1, a1, 3
    addi t6, t6, -1
    bnez t6, 3b
    j __snippet_end
"""


def test_a_region_leaves_for_the_region_its_exit_leads_to():
    interp, jit, tier = run_both(LOOP_THEN_LOOP, {})
    assert (interp.x(10), interp.x(11)) == (30, 90)
    first, second = RAM_BASE + 4, RAM_BASE + 24
    regions = {pc: region for _, pc, region in tier.code}
    # the first loop is its own region (the branch to the second leaves it), the second
    # loop another, which the first's exit reaches
    assert [node.pc for node in regions[first]] == [first, first + 12]
    assert second in regions and second in regions[second][0].targets()


def test_one_module_holds_many_blocks_each_callable():
    interp, _ = run_program(THREE_LOOPS, {}, "interp")
    cache = interp.machine.bus.decode_cache
    irs = [
        region_ir("rvh_block", pc, pc - RAM_BASE, read_region(cache, pc - RAM_BASE, pc), True)
        for pc in LOOP_STARTS
    ]
    digests = [block_digest(ir, QUICK) for ir in irs]
    compiled = compile_blocks(digests, irs, QUICK)
    assert len(set(compiled.addresses)) == 3 and all(compiled.addresses)


def test_a_stores_tlb_miss_and_its_store_over_code_leave_through_one_exit_block():
    pc = RAM_BASE + 0x100
    sd = Instruction(Op.SD, 0, 2, 1, 8, 4, 0x00113423)  # sd x1, 8(x2)
    addi = Instruction(Op.ADDI, 2, 2, 0, 16, 4, 0x01010113)  # addi x2, x2, 16
    ir = region_ir("rvh_block", pc, pc - RAM_BASE, (Node(pc, (sd, sd, addi, sd)),), True)
    lines = ir.splitlines()
    # where the TLB misses (a tag compared) and the stores over code (the module's function
    # says so) branch to when they leave
    leaving = [
        re.match(r"  br i1 %t\d+, label %(l\d+),", following).group(1)
        for line, following in zip(lines, lines[1:], strict=False)
        if re.search(r"= icmp ne i64 %t\d+, %t\d+$|call i1 @rvh_store_over_code", line)
    ]
    # each store's two ways out leave before it through one block; the second store leaves
    # at another pc, the third after a write (x2 changed): three blocks
    assert len(leaving) == 6 and len(set(leaving)) == 3
    assert leaving[0] == leaving[1] and leaving[2] == leaving[3] and leaving[4] == leaving[5]


def test_a_digest_names_one_block_at_one_place_and_level():
    interp, _ = run_program(THREE_LOOPS, {}, "interp")
    cache = interp.machine.bus.decode_cache
    pc = LOOP_STARTS[0]
    region = read_region(cache, pc - RAM_BASE, pc)
    ir = region_ir("rvh_block", pc, pc - RAM_BASE, region, False)
    same = block_digest(region_ir("rvh_block", pc, pc - RAM_BASE, region, False), OPTIMIZED)
    assert block_digest(ir, OPTIMIZED) == same
    shorter = (Node(pc, region[0].instructions[:-1]),)
    moved = tuple(Node(node.pc + 4096, node.instructions) for node in region)
    others = [
        block_digest(ir, QUICK),  # another level
        block_digest(region_ir("rvh_block", pc, pc - RAM_BASE, region, True), QUICK),
        # the same instructions at another pc, or another host offset (physical page)
        block_digest(region_ir("rvh_block", pc + 4096, pc - RAM_BASE, moved, False), OPTIMIZED),
        block_digest(region_ir("rvh_block", pc, pc - RAM_BASE + 4096, region, False), OPTIMIZED),
        block_digest(region_ir("rvh_block", pc, pc - RAM_BASE, shorter, False), OPTIMIZED),
    ]
    assert len({same, *others}) == 6


def test_a_second_run_loads_its_blocks_from_the_code_cache(tmp_path):
    elf = GUESTS / "bench" / "recursion.elf"
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    runs = [
        run_guest(elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000) for _ in range(2)
    ]
    first, second = (tier.statistics() for _, _, _, tier in runs)
    assert first["blocks_compiled"] > 0 and first["blocks_loaded"] == 0
    assert second["blocks_compiled"] == 0 and second["blocks_optimized"] == 0
    assert second["blocks_loaded"] == first["blocks_compiled"]
    assert second["instructions"] >= first["instructions"]  # hot from the first entry
    for result, output, machine, _ in runs:
        assert output == interp[1] and result.instructions == interp[0].instructions
        assert np.array_equal(
            comparable(machine.harts[0].state), comparable(interp[2].harts[0].state)
        )


def test_region_keys_name_what_the_code_depends_on():
    pc = RAM_BASE + 0x100
    region = (
        Node(pc, (Instruction(Op.ADDI, 10, 10, 0, 1, 4, 0x00150513),)),
        Node(pc + 4, (Instruction(Op.BNE, 0, 10, 11, -4, 4, 0xFEB51EE3),)),
    )
    changed = (Node(pc, (Instruction(Op.ADDI, 10, 10, 0, 2, 4, 0x00250513),)), region[1])
    key = (pc - RAM_BASE, pc, region)
    assert region_key(key, QUICK) == region_key((pc - RAM_BASE, pc, tuple(region)), QUICK)
    others = {
        region_key(key, OPTIMIZED),
        region_key((pc - RAM_BASE + 0x1000, pc, region), QUICK),
        region_key((pc - RAM_BASE, pc, changed), QUICK),
        region_key((pc - RAM_BASE, pc, region[:1]), QUICK),
    }
    assert len(others | {region_key(key, QUICK)}) == 5


def test_a_second_run_finds_its_regions_in_the_code_cache_without_their_ir(tmp_path, monkeypatch):
    elf = GUESTS / "bench" / "recursion.elf"
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    first = run_guest(elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000)[3]

    def no_ir(*args):
        raise AssertionError("a region's IR written to look it up")

    monkeypatch.setattr(engine, "region_ir", no_ir)
    result, output, machine, second = run_guest(
        elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000
    )
    assert second.statistics()["blocks_loaded"] == first.statistics()["blocks_compiled"]
    assert output == interp[1] and result.instructions == interp[0].instructions
    assert np.array_equal(comparable(machine.harts[0].state), comparable(interp[2].harts[0].state))


def test_objects_from_the_code_cache_share_an_engine_unless_they_define_a_block_twice():
    pc = RAM_BASE + 0x100
    region = (Node(pc, (Instruction(Op.ADDI, 10, 10, 0, 1, 4, 0x00150513),)),)
    other = (Node(pc + 8, (Instruction(Op.ADDI, 11, 11, 0, 1, 4, 0x00158593),)),)
    irs = [region_ir("rvh_block", pc, 0x100, region, True)]
    irs.append(region_ir("rvh_block", pc + 8, 0x108, other, True))
    digests = [block_digest(ir, QUICK) for ir in irs]
    one = compile_blocks(digests[:1], irs[:1], QUICK).code
    both = compile_blocks(digests, irs, QUICK).code  # defines the first block again
    alone = compile_blocks(digests[1:], irs[1:], QUICK).code
    machine = Machine(MachineConfig(max_instructions=1000), output=bytearray().extend)
    tier = attach_tier(machine)
    first = tier._load_shared(one, digests[:1], QUICK)
    assert tier._load_shared(alone, digests[1:], QUICK) is first
    assert tier._load_shared(both, digests, QUICK) is not first
    assert first.get_function_address(engine.symbol(digests[1])) != 0


def test_a_dropped_region_still_decoded_comes_back_without_being_read_again(monkeypatch):
    machine = Machine(MachineConfig(max_instructions=1000), output=bytearray().extend)
    tier = attach_tier(machine)
    pc = RAM_BASE
    region = (Node(pc, (Instruction(Op.ADDI, 10, 10, 0, 1, 4, 0x00150513),)),)
    host = pc - RAM_BASE
    base = ((host >> 1) & L.DECODE_CACHE_MASK) << L.DC_SHIFT
    decode_cache = machine.bus.decode_cache
    decode_cache[base + L.DC_TAG] = host
    decode_cache[base + L.DC_OP] = Op.ADDI
    decode_cache[base + L.DC_RD] = 10
    decode_cache[base + L.DC_RS1] = 10
    decode_cache[base + L.DC_RS2] = 0
    decode_cache[base + L.DC_IMM] = 1
    decode_cache[base + L.DC_LENGTH] = 4
    decode_cache[base + L.DC_BITS] = 0x00150513
    assert read_region(decode_cache, host, pc) == region
    reads = []
    monkeypatch.setattr(
        engine, "read_region", lambda *args: reads.append(args) or read_region(*args)
    )

    def queue_and_service():
        tier.jit[J_QUEUE] = host
        tier.jit[J_QUEUE + 1] = pc
        tier.jit[J_QUEUE_LEN] = 1
        tier.service()
        tier.finish()
        tier.service()

    slot = J_TABLE + (((host >> 1) & TABLE_MASK) << JT_SHIFT)
    queue_and_service()
    assert len(reads) == 1 and tier.jit[slot + JT_HOST] == host
    tier.jit[slot + JT_HOST] = -1  # dropped, as after a write to its page
    queue_and_service()
    assert len(reads) == 1 and tier.jit[slot + JT_HOST] == host  # back, not read again
    tier.jit[slot + JT_HOST] = -1
    decode_cache[base + L.DC_BITS] = 0x00250513  # the code changed: read anew
    decode_cache[base + L.DC_IMM] = 2
    queue_and_service()
    assert len(reads) == 2 and tier.jit[slot + JT_HOST] == host
    assert len(tier.code) == 2


def run_counted_loop(
    passes: int, compile_after: int | None, cache: CodeCache | None, slow_after: int | None = None
):
    source = f"li t6, {passes}\nloop:\naddi a0, a0, 1\naddi t6, t6, -1\nbnez t6, loop\n"
    tiers: list[Tier] = []

    def setup(machine):
        tiers.append(
            attach_tier(
                machine,
                threshold=2,
                cache=cache,
                compile_after=compile_after,
                slow_after=slow_after,
            )
        )

    snippet = run_asm(source + "j __snippet_end", setup=setup)
    assert snippet.x(10) == passes
    return tiers[0].statistics()


@pytest.mark.parametrize("passes", [30, 45])
def test_a_block_hot_at_the_threshold_is_compiled_only_after_compile_after_entries(passes):
    # hot at 2 entries (looked for, not found), compiled at 50: queued again after 48 more
    stats = run_counted_loop(passes, compile_after=50, cache=None)
    assert stats["blocks_compiled"] == 0 and stats["instructions"] == 0
    stats = run_counted_loop(passes + 60, compile_after=50, cache=None)
    assert stats["blocks_compiled"] >= 1 and stats["instructions"] > 0


def counted_region_reads(monkeypatch) -> list[int]:
    """The pcs the tier reads regions at from now on (``engine.read_region``), in order."""
    reads: list[int] = []

    def counting_read(decode_cache, host, pc, heads):
        reads.append(pc)
        return read_region(decode_cache, host, pc, heads)

    monkeypatch.setattr(engine, "read_region", counting_read)
    return reads


@pytest.mark.parametrize("slow_after", [None, 1000, 100])
def test_a_block_whose_entries_come_slowly_waits_again(monkeypatch, slow_after):
    # hot at 2 entries, 48 more (3 instructions each, about 144 instructions of the hart's
    # time) before compile_after: within 1000 instructions it is compiled, not within 100;
    # then it waits again, and again, its region read only once
    reads = counted_region_reads(monkeypatch)
    stats = run_counted_loop(400, compile_after=50, cache=None, slow_after=slow_after)
    if slow_after == 100:
        assert stats["blocks_compiled"] == 0 and stats["instructions"] == 0
        assert len(reads) == 1
    else:
        assert stats["blocks_compiled"] >= 1 and stats["instructions"] > 0


@pytest.mark.parametrize("passes", [30, 90])
def test_a_pc_nothing_was_compiled_at_waits_for_compile_after_unread(monkeypatch, passes):
    # hot at 2 entries with nothing compiled there, in memory or in a code cache: its region
    # is read only at 50, once, and only if it gets there
    reads = counted_region_reads(monkeypatch)
    stats = run_counted_loop(passes, compile_after=50, cache=None)
    if passes < 50:
        assert reads == [] and stats["blocks_compiled"] == 0
    else:
        assert len(reads) == len(set(reads)) >= 1 and stats["blocks_compiled"] >= 1


def test_the_code_cache_knows_the_places_regions_were_stored_at(tmp_path):
    pc = RAM_BASE + 0x100
    here, elsewhere = place_key(pc - RAM_BASE, pc), place_key(pc - RAM_BASE + 4, pc + 4)
    assert here != elsewhere and here == place_key(pc - RAM_BASE, pc)
    writer = CodeCache(tmp_path)
    assert not writer.knows_place(here)
    writer.store(["a" * 40], b"code", [f"{here}/{'b' * 40}"])
    assert writer.knows_place(here) and not writer.knows_place(elsewhere)
    # another process's cache sees what was stored before it first looked
    assert CodeCache(tmp_path).knows_place(here)
    assert not CodeCache(tmp_path / "empty").knows_place(here)


def test_the_code_cache_keeps_the_shape_of_each_region_it_stores(tmp_path):
    pc = RAM_BASE + 0x100
    here = place_key(pc - RAM_BASE, pc)
    loop = (Node(pc, (Instruction(Op.ADDI, 10, 10, 0, 1, 4, 0x00150513),)),)
    longer = (Node(pc, loop[0].instructions + (Instruction(Op.BNE, 0, 31, 0, -4, 4, 0),)),)
    writer = CodeCache(tmp_path)
    assert writer.regions_at(here) == ()
    quick = region_key((pc - RAM_BASE, pc, loop), QUICK)
    writer.store(["a" * 40], b"first", [quick], [engine.shape(loop)])
    assert writer.regions_at(here) == (loop,)  # seen by the writer at once
    writer.store(
        ["b" * 40, "c" * 40],
        b"second",
        [region_key((pc - RAM_BASE, pc, loop), OPTIMIZED), f"{here}/{'d' * 40}"],
        [engine.shape(loop), engine.shape(longer)],
    )
    # another process reads them from the objects: each region once, the latest first
    assert CodeCache(tmp_path).regions_at(here) == (longer, loop)
    assert CodeCache(tmp_path).regions_at(place_key(0, RAM_BASE)) == ()
    # an object stored without shapes (before they were kept) gives none
    other = place_key(0x200, RAM_BASE + 0x200)
    writer.store(["e" * 40], b"third", [f"{other}/{'f' * 40}"])
    assert CodeCache(tmp_path).knows_place(other) and CodeCache(tmp_path).regions_at(other) == ()
    assert engine.region_of([[pc, [[1, 2]]]]) is None and engine.region_of("x") is None
    assert engine.region_of(engine.shape(longer)) == longer


def test_a_region_stored_in_another_shape_is_loaded_from_the_code_cache_unread(
    tmp_path, monkeypatch
):
    """A region read now stops at the regions installed when it is read, so the same pc can
    be read in another shape than the one a run stored; the stored region is still exact
    where the decode cache holds its instructions, and is loaded without a read."""
    first = run_counted_loop(100, compile_after=None, cache=CodeCache(tmp_path))
    assert first["blocks_compiled"] >= 1
    reads: list[int] = []

    def read_stopping_early(decode_cache, host, pc, heads):
        # as if a region had been installed at the loop's second instruction
        reads.append(pc)
        return read_region(decode_cache, host, pc, heads | {pc + 4})

    monkeypatch.setattr(engine, "read_region", read_stopping_early)
    second = run_counted_loop(100, compile_after=None, cache=CodeCache(tmp_path))
    assert second["blocks_compiled"] == 0 and reads == []
    assert second["blocks_loaded"] == first["blocks_compiled"] and second["instructions"] > 0
    # without the stored shapes the read's other shape misses the cache and is compiled
    monkeypatch.setattr(CodeCache, "regions_at", lambda cache, place: ())
    third = run_counted_loop(100, compile_after=None, cache=CodeCache(tmp_path))
    assert reads and third["blocks_compiled"] >= 1


def test_the_code_cache_is_an_object_file_per_batch_and_one_index_log_per_process(tmp_path):
    elf = GUESTS / "bench" / "bytes.elf"
    cache = CodeCache(tmp_path)
    tier = run_guest(elf, "jit", False, True, cache, limit=2_000_000)[3]
    stats = tier.statistics()
    assert stats["blocks_compiled"] >= 2 and stats["blocks_optimized"] >= 1
    files = sorted(
        path.relative_to(tmp_path).parts[0] for path in tmp_path.rglob("*") if path.is_file()
    )
    # no file per block: what a run stores costs a file per batch and one log
    assert files.count("objects") == len(list((tmp_path / "objects").glob("*.o")))
    assert files.count("objects") <= stats["batches"] and files.count("index") == 1
    log = next((tmp_path / "index").glob("*.log")).read_text().splitlines()
    assert len(log) == stats["blocks_compiled"] + stats["blocks_optimized"]
    # a later run finds every block by its region key, and loads each object once
    again = run_guest(elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000)[3]
    assert again.statistics()["blocks_compiled"] == 0 and again.statistics()["blocks_loaded"] > 0


def test_the_code_cache_reads_only_whole_index_lines(tmp_path):
    writer = CodeCache(tmp_path)
    place = place_key(0x100, RAM_BASE + 0x100)
    writer.store(["a" * 40], b"first", [f"{place}/{'1' * 40}"])
    writer.store(["b" * 40, "c" * 40], b"second", None)
    (log,) = (tmp_path / "index").glob("*.log")
    name = log.read_text().split()[1]
    # damage: a line without its end (another process's write under way), and garbage
    with log.open("a") as file:
        file.write("not a line\n" + f"{'d' * 40} {name} -")
    reader = CodeCache(tmp_path)
    assert reader.resolve(f"{place}/{'1' * 40}") == "a" * 40 and reader.knows_place(place)
    assert reader.find("a" * 40) == (b"first", ["a" * 40])
    assert reader.find("c" * 40) == (b"second", ["b" * 40, "c" * 40])
    assert reader.find("d" * 40) is None and reader.errors == 0
    # an object whose manifest does not name the digest is damaged
    with log.open("a") as file:
        file.write(f"\n{'e' * 40} {name} -\n")
    assert CodeCache(tmp_path).find("e" * 40) is None


def test_the_code_cache_merges_old_index_logs_without_the_lines_of_pruned_objects(tmp_path):
    for number in range(engine.MERGE_LOGS_OVER + 2):  # each its own process's log
        CodeCache(tmp_path).store([f"{number:040x}"], f"code {number}".encode())
    logs = sorted((tmp_path / "index").glob("*.log"))
    assert len(logs) == engine.MERGE_LOGS_OVER + 2
    for path in logs:
        os.utime(path, (1_000_000, 1_000_000))  # long unchanged
    gone = CodeCache(tmp_path).find(f"{0:040x}")
    assert gone is not None
    (tmp_path / "objects" / f"{hashlib.sha256(engine._pack(*gone)).hexdigest()}.o").unlink()
    # format 2's files beside the objects go too
    (tmp_path / "regions" / "place").mkdir(parents=True)
    (tmp_path / "regions" / "place" / ("f" * 40)).write_text("x")
    (tmp_path / "index" / ("f" * 40)).write_text("x")
    CodeCache(tmp_path).prune()
    (merged,) = (tmp_path / "index").glob("*.log")
    assert len(merged.read_text().splitlines()) == engine.MERGE_LOGS_OVER + 1
    assert not (tmp_path / "regions").exists() and not (tmp_path / "index" / ("f" * 40)).exists()
    reader = CodeCache(tmp_path)
    assert reader.find(f"{0:040x}") is None
    for number in range(1, engine.MERGE_LOGS_OVER + 2):
        assert reader.find(f"{number:040x}") == (f"code {number}".encode(), [f"{number:040x}"])


def test_the_regions_being_compiled_are_counted_by_node_and_head():
    def node(at: int, count: int) -> Node:
        ins = Instruction(Op.ADDI, 1, 1, 0, 1, 4, 0x00108093)
        return Node(at, tuple([ins] * count))

    first = (0x100, RAM_BASE + 0x100, (node(RAM_BASE + 0x100, 2), node(RAM_BASE + 0x108, 1)))
    second = (0x108, RAM_BASE + 0x108, (node(RAM_BASE + 0x108, 1),))
    compiling = _Compiling()
    compiling.update([first, second, first])
    assert len(compiling) == 2 and first in compiling
    assert compiling.covers(0x108, RAM_BASE + 0x108) and compiling.covers(0x100, RAM_BASE + 0x100)
    assert sorted(compiling.heads(0)) == [RAM_BASE + 0x100, RAM_BASE + 0x108]
    compiling.discard(first)
    assert not compiling.covers(0x100, RAM_BASE + 0x100)
    assert compiling.covers(0x108, RAM_BASE + 0x108)  # still the second's
    assert list(compiling.heads(0)) == [RAM_BASE + 0x108]
    compiling.discard(second)
    compiling.discard(second)
    assert not compiling.covers(0x108, RAM_BASE + 0x108) and not list(compiling.heads(0))
    assert compiling.nodes == {} and compiling.starts == {}


def test_a_block_in_the_code_cache_is_loaded_at_the_threshold_not_compile_after(tmp_path):
    cache = CodeCache(tmp_path)
    first = run_counted_loop(30, compile_after=None, cache=cache)
    assert first["blocks_compiled"] >= 1
    second = run_counted_loop(30, compile_after=1000, cache=cache)
    assert second["blocks_compiled"] == 0 and second["blocks_loaded"] >= 1
    assert second["instructions"] > 0


def run_and_close(elf, cache: CodeCache, save_after: int | None):
    """A jit run of ``elf`` with quick code only, then ``Tier.close`` as ``rvh run`` does."""
    output = bytearray()
    machine = Machine(MachineConfig(max_instructions=2_000_000), output=output.extend)
    tier = attach_tier(machine, threshold=8, cache=cache, optimize_after=None)
    tier.save_after = save_after
    machine.load(str(elf))
    result = machine.run_sync()
    tier.close()
    return result, bytes(output), machine, tier


def test_a_runs_hot_blocks_go_optimized_into_the_code_cache_for_the_next_run(tmp_path):
    elf = GUESTS / "bench" / "bytes.elf"  # its start fills a buffer: blocks hot and lukewarm
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    first = run_and_close(elf, CodeCache(tmp_path), save_after=1000)[3]
    stats = first.statistics()
    assert stats["blocks_optimized"] == 0 and 0 < stats["blocks_saved"] < len(first.code)
    assert all(code.level is QUICK for code in first.code.values())  # the run's own code
    hot = {key for key in first.code if first.jit[J_COUNTS + ((key[0] >> 1) & COUNT_MASK)] >= 1000}
    assert len(hot) == stats["blocks_saved"]
    result, output, machine, second = run_and_close(elf, CodeCache(tmp_path), None)
    loaded = {key: code.level for key, code in second.code.items()}
    assert second.statistics()["blocks_compiled"] == 0
    # the blocks hot in the first run come back optimized, the others as their quick code
    assert {key for key, level in loaded.items() if level is OPTIMIZED} == hot & set(loaded)
    assert len(hot & set(loaded)) == len(hot)
    assert output == interp[1] and result.instructions == interp[0].instructions
    assert np.array_equal(comparable(machine.harts[0].state), comparable(interp[2].harts[0].state))


def test_a_runs_end_compiles_for_the_code_cache_within_its_budget_the_hottest_first(
    tmp_path, monkeypatch
):
    elf = GUESTS / "bench" / "bytes.elf"
    full = run_and_close(elf, CodeCache(tmp_path / "full"), save_after=1000)[3]
    hot = full.statistics()["blocks_saved"]
    assert hot > 2
    # a budget the first batch already spends: that batch, the hottest, and no more
    monkeypatch.setattr(engine, "SAVE_SECONDS", 1e-9)
    monkeypatch.setattr(engine, "SAVE_BATCH", 2)
    cache = CodeCache(tmp_path / "budget")
    first = run_and_close(elf, cache, save_after=1000)[3]
    assert first.statistics()["blocks_saved"] == 2
    counts = {key: int(first.jit[J_COUNTS + ((key[0] >> 1) & COUNT_MASK)]) for key in first.code}
    hottest = sorted(first._worth_saving(first.code), key=lambda key: -counts[key])[:2]
    second = run_and_close(elf, CodeCache(tmp_path / "budget"), save_after=None)[3]
    optimized = {key for key, code in second.code.items() if code.level is OPTIMIZED}
    assert optimized == set(hottest)


def test_an_idle_worker_compiles_the_hot_quick_blocks_optimized_for_the_code_cache(
    tmp_path, monkeypatch
):
    """With a code cache, a worker with no quick block to compile compiles the blocks that
    counted ``save_after`` entries optimized while the run goes on (the hottest, a few at a
    time): installed at once, and written to the cache, so that the run's end has less of
    it left to do.  The run compiles in its own thread, so that what got hot does not
    depend on the host's speed; then a worker is given and a ``service`` with it idle
    stands for the run going on."""
    monkeypatch.setattr(engine, "IDLE_SAVE_QUIET", 0.0)
    monkeypatch.setattr(engine, "OPTIMIZE_POLL", 0.0)
    elf = GUESTS / "bench" / "bytes.elf"
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    machine = Machine(MachineConfig(max_instructions=2_000_000), output=lambda data: None)
    tier = attach_tier(machine, threshold=8, cache=CodeCache(tmp_path), optimize_after=None)
    tier.save_after = 1000
    machine.load(str(elf))
    machine.run_sync()
    tier.service(int(machine.harts[0].state[L.TIME_NS]))  # synchronous: nothing idle-saved
    assert tier.statistics()["blocks_optimized"] == 0
    tier.worker = ThreadPoolExecutor(1, "rvh-tier")
    worth = tier._worth_saving(tier.code)
    assert len(worth) > engine.IDLE_SAVE_BATCH
    tier.service(int(machine.harts[0].state[L.TIME_NS]))
    tier.finish()
    optimized = {key for key, code in tier.code.items() if code.level is OPTIMIZED}
    assert optimized == set(worth[: engine.IDLE_SAVE_BATCH])
    assert tier.statistics()["blocks_optimized"] == engine.IDLE_SAVE_BATCH
    assert tier.statistics()["blocks_saved_running"] == engine.IDLE_SAVE_BATCH
    tier.save_after = 1 << 40  # an idle look that finds nothing marks no batch as its own
    tier.service(int(machine.harts[0].state[L.TIME_NS]))
    assert not tier.saving_batches and not tier.in_flight
    tier.save_after = 1000
    tier.close()
    assert tier.statistics()["blocks_saved"] == len(worth) - engine.IDLE_SAVE_BATCH
    result, output, second_machine, second = run_and_close(elf, CodeCache(tmp_path), None)
    assert second.statistics()["blocks_compiled"] == 0
    assert set(worth) <= {key for key, code in second.code.items() if code.level is OPTIMIZED}
    assert output == interp[1] and result.instructions == interp[0].instructions
    state = second_machine.harts[0].state
    assert np.array_equal(comparable(state), comparable(interp[2].harts[0].state))


def test_threads_compiling_at_once_outside_the_lock_make_the_same_code_as_one_alone():
    """Two threads generating code at once, each in its own LLVM context, while a third
    loads objects into engines behind the lock: every object is byte for byte what one
    thread alone makes (and nothing crashes)."""
    elf = GUESTS / "bench" / "bytes.elf"
    tier = run_guest(elf, "jit", False, True, limit=2_000_000)[3]
    keys = list(tier.code)[:6]
    assert len(keys) >= 3
    irs = [engine._ir(key, QUICK) for key in keys]
    names = [f"{number:040x}" for number in range(len(irs))]
    alone = compile_blocks(names, irs, QUICK).code
    made: list[bytes] = []
    stop = threading.Event()

    def compile_again() -> None:
        for _ in range(8):
            made.append(compile_blocks(names, irs, QUICK).code)

    def load_meanwhile() -> None:
        while not stop.is_set():
            loaded = engine._load(alone, QUICK)
            assert loaded.get_function_address(engine.symbol(names[0]))

    loader = threading.Thread(target=load_meanwhile)
    workers = [threading.Thread(target=compile_again) for _ in range(2)]
    loader.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    loader.join()
    assert len(made) == 16 and all(code == alone for code in made)


def test_a_thread_in_its_own_llvm_context_compiles_while_another_holds_llvmlites_lock():
    """The worker's code generation does not wait for llvmlite's process-wide lock (nor
    make the hart's thread wait for it), and takes it again while the garbage collector
    runs in its thread (what that frees may belong to any thread)."""
    engine._initialize_llvm()
    ir = region_ir(
        engine._PLACEHOLDER,
        RAM_BASE,
        0,
        (Node(RAM_BASE, (Instruction(Op.ADDI, 5, 5, 0, 1, 4, 0),)),),
        count_entries=True,
    )
    text = f"{engine.SHARED_IR}\n\n{ir}"
    seen_by_collector: list[bool] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.current_thread() is worker:
            seen_by_collector.append(engine._thread_state.outside_lock)

    emitted: list[bytes] = []
    ready, locked, done = threading.Event(), threading.Event(), threading.Event()

    def compile_outside_the_lock() -> None:
        machine = engine._emitter(QUICK)  # this thread's target machine and context are made
        with engine._own_context():  # before the lock is held: made once, under it
            pass
        ready.set()
        locked.wait()
        with engine._own_context() as context:
            module = llvm.parse_assembly(text, context)
            engine._optimize(module, machine, QUICK)
            gc.collect()
            emitted.append(machine.emit_object(module))
            module.close()
        done.set()  # (the thread's end frees its target machine, under the lock)

    gc.collect()  # so that the worker's collection frees nothing of llvmlite's (it would wait)
    gc.callbacks.append(note)
    worker = threading.Thread(target=compile_outside_the_lock)
    try:
        worker.start()
        ready.wait()
        with llvm.ffi.lib._lock:  # what any other thread's llvmlite call takes
            locked.set()
            finished = done.wait(timeout=60)
    finally:
        gc.callbacks.remove(note)
        locked.set()
        worker.join()
    assert finished and emitted and emitted[0][:4] == b"\x7fELF"
    assert seen_by_collector and not any(seen_by_collector)
    assert not engine._thread_state.outside_lock


def test_without_save_after_the_code_cache_keeps_only_what_the_run_compiled(tmp_path):
    elf = GUESTS / "bench" / "recursion.elf"
    first = run_and_close(elf, CodeCache(tmp_path), save_after=None)[3]
    assert first.statistics()["blocks_saved"] == 0
    second = run_and_close(elf, CodeCache(tmp_path), None)[3]
    assert second.code and all(code.level is QUICK for code in second.code.values())


def test_the_code_cache_drops_its_least_recently_used_objects_past_its_limit(tmp_path):
    elf = GUESTS / "bench" / "bytes.elf"
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    first = run_guest(elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000)[3]
    # the least recently used object made one that holds the only code of a region (its
    # quick code, never optimized), so that the next run must compile something again
    only_quick = {
        block_digest(region_ir("rvh_block", pc, host, region, True), QUICK)
        for (host, pc, region), code in first.code.items()
        if code.level is QUICK
    }

    def digests_in(path):
        return engine._unpack(path.read_bytes())[1]

    def holds_only_code(path):
        return bool(only_quick & set(digests_in(path)))

    objects = sorted((tmp_path / "objects").glob("*.o"), key=lambda path: not holds_only_code(path))
    assert len(objects) >= 2 and holds_only_code(objects[0])
    for age, path in enumerate(objects):  # the first the least recently used
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    oldest = digests_in(objects[0])
    total = sum(path.stat().st_size for path in objects)
    cache = CodeCache(tmp_path, limit=total - objects[0].stat().st_size)
    assert cache.prune() == 1
    assert sorted((tmp_path / "objects").glob("*.o")) == sorted(objects[1:])
    assert all(cache.find(d) is None for d in oldest) and cache.errors == 0
    assert all(CodeCache(tmp_path).find(d) is None for d in oldest)
    # a run with what is left loads some blocks, compiles the others again (quick, or
    # optimized where the object dropped held a block's O2 code and its quick code is left),
    # and ends the same
    result, output, machine, tier = run_guest(elf, "jit", False, True, cache, limit=2_000_000)
    stats = tier.statistics()
    assert stats["blocks_loaded"] > 0, stats
    assert stats["blocks_compiled"] + stats["blocks_optimized"] > 0, stats
    assert (result.instructions, output) == (interp[0].instructions, interp[1])
    assert np.array_equal(comparable(machine.harts[0].state), comparable(interp[2].harts[0].state))


def test_a_damaged_code_cache_is_compiled_again(tmp_path):
    elf = GUESTS / "bench" / "intmem.elf"
    interp = run_guest(elf, "interp", sbi=False, limit=2_000_000)
    run_guest(elf, "jit", False, True, CodeCache(tmp_path), limit=2_000_000)
    objects = list((tmp_path / "objects").glob("*.o"))
    assert objects
    for path in objects:  # flip a byte: the object no longer hashes to its name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    cache = CodeCache(tmp_path)
    result, output, machine, tier = run_guest(elf, "jit", False, True, cache, limit=2_000_000)
    stats = tier.statistics()
    assert stats["blocks_loaded"] == 0 and stats["blocks_compiled"] > 0 and cache.errors > 0
    assert (result.instructions, output) == (interp[0].instructions, interp[1])
    assert np.array_equal(comparable(machine.harts[0].state), comparable(interp[2].harts[0].state))


# ---- the command line ------------------------------------------------------------------
def rvh(*args):
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=dict(os.environ),
    )


def test_tier_jit_stats_report_the_translated_share():
    elf = require_guest(GUESTS / "bench" / "recursion.elf")
    done = rvh("run", "--tier", "jit", "--stats", "--max-insns", "100000000", str(elf))
    assert done.returncode == 124, done.stderr
    assert "tier jit:" in done.stderr and "blocks compiled" in done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("translated code:"))
    # the worker thread compiles while the interpreter runs, so the share depends on the
    # machine's load; test_nearly_all_of_a_bench_workload_runs_translated pins it down
    share = float(line.split("(")[1].split("%")[0])
    assert 0.0 < share <= 100.0


@pytest.mark.parametrize("command", [["run"], ["bench", "linux"]])
def test_an_unknown_tier_is_a_one_line_usage_error(command):
    done = rvh(*command, "--tier", "tcg", str(GUESTS / "hello" / "hello.elf"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "--tier" in done.stderr


def test_the_threshold_is_the_tiers_own():
    machine = Machine(MachineConfig(tier="jit"), output=lambda _: None)
    assert machine.tier is not None and machine.tier.jit[J_THRESHOLD] > 1
    assert Machine(MachineConfig(), output=lambda _: None).tier is None


def test_a_second_rvh_run_loads_compiled_blocks_per_its_stats(tmp_path):
    elf = require_guest(GUESTS / "bench" / "intmem.elf")
    args = ["run", "--tier", "jit", "--tier-cache", str(tmp_path), "--stats"]
    runs = [rvh(*args, "--max-insns", "50000000", str(elf)) for _ in range(2)]
    lines = []
    for done in runs:
        assert done.returncode == 124, done.stderr
        lines.append(next(x for x in done.stderr.splitlines() if x.startswith("tier jit:")))
    # "tier jit: B blocks given baseline code ..., N blocks compiled, ... ; M loaded from the
    # code cache ..."
    counts = [
        re.findall(r"(\d+) (?:blocks given baseline|blocks compiled|loaded from)", line)
        for line in lines
    ]
    (fresh, compiled, loaded), (_, compiled_again, loaded_again) = (
        [int(n) for n in c] for c in counts
    )
    # a short run: the loops run baseline code, compiled optimized into the cache at its end
    assert fresh + compiled > 0 and loaded == 0, lines
    # which blocks get hot depends a little on how fast the worker compiles (the interpreter
    # counts entries while it does), so on a loaded host the second run may find a block hot
    # that the first never compiled: most come from the cache regardless
    # (the worker may still optimize a block that ran long enough: that is not compiling anew)
    # (and blocks whose IR is the same share one function: loads may outnumber compiles)
    assert loaded_again > 0 and compiled_again < loaded_again, lines
    assert runs[0].stdout == runs[1].stdout
    # the first run's hottest blocks went into the cache optimized, while it ran or after it
    saved = re.search(
        r"^code cache: +hot blocks .* for the next runs: (\d+) while .*, (\d+) after the run",
        runs[0].stderr,
        re.M,
    )
    assert saved and 0 < int(saved[1]) + int(saved[2]) <= fresh + compiled, runs[0].stderr


def test_tier_cache_off_compiles_every_run():
    elf = require_guest(GUESTS / "bench" / "intmem.elf")
    done = rvh(
        "run",
        "--tier",
        "jit",
        "--tier-cache",
        "off",
        "--stats",
        "--max-insns",
        "20000000",
        str(elf),
    )
    assert done.returncode == 124, done.stderr
    assert " 0 loaded from the code cache" in done.stderr


def test_a_restored_vm_runs_on_the_tier_its_restore_asks_for(tmp_path):
    """The tier is how a run goes, not what the machine is: a VM saved on the interpreter
    resumes on the tier if the restoring command says --tier jit, and ends as the
    uninterrupted run does."""
    elf = require_guest(GUESTS / "bench" / "recursion.elf")
    vm = str(tmp_path / "mid.rvh")
    whole = rvh("run", "--tier", "interp", "--stats", str(elf))
    first = rvh("run", "--tier", "interp", "--save", vm, "--save-at", "20000000", str(elf))
    rest = rvh("run", "--restore", vm, "--tier", "jit", "--tier-cache", "off", "--stats")
    assert whole.returncode == first.returncode == rest.returncode == 0, rest.stderr
    assert first.stdout + rest.stdout == whole.stdout
    retired = [
        next(x for x in done.stderr.splitlines() if x.startswith("instructions retired:"))
        for done in (whole, rest)
    ]
    assert retired[0] == retired[1]
    line = next(x for x in rest.stderr.splitlines() if x.startswith("translated code:"))
    assert int(line.split(":")[1].split()[0]) > 0, rest.stderr
    # and the other way: on the interpreter, no tier lines, whatever the saving run used
    again = rvh("run", "--restore", vm, "--tier", "interp", "--stats")
    assert again.returncode == 0 and again.stdout == rest.stdout
    assert "tier jit:" not in again.stderr


def test_an_entry_is_counted_queued_at_the_threshold_and_waits_when_the_queue_is_full():
    from rvh.tier.dispatch import block_entry
    from rvh.tier.layout import COUNT_MASK, J_COUNTS, JIT_SIZE, JT_FIELDS, QUEUE_ENTRIES

    jit = np.zeros(JIT_SIZE, dtype=np.int64)
    jit[J_TABLE + JT_HOST :: JT_FIELDS] = -1
    jit[J_THRESHOLD] = 3
    host, pc = 0x2468, 0x8000_2468
    counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
    assert [block_entry(jit, host, pc) for _ in range(3)] == [0, 0, 2]  # hot at the third
    assert jit[J_QUEUE_LEN] == 1 and list(jit[J_QUEUE : J_QUEUE + 2]) == [host, pc]
    assert block_entry(jit, host, pc) == 0 and jit[counter] == 4  # queued once only
    # a full queue: the entry that reaches the threshold is taken back, to be tried again
    other = host + 2
    jit[J_QUEUE_LEN] = QUEUE_ENTRIES
    assert [block_entry(jit, other, pc + 2) for _ in range(4)] == [0, 0, 0, 0]
    assert jit[counter + 1] == 2 and jit[J_QUEUE_LEN] == QUEUE_ENTRIES
    jit[J_QUEUE_LEN] = 1
    assert block_entry(jit, other, pc + 2) == 2
    assert list(jit[J_QUEUE + 2 : J_QUEUE + 4]) == [other, pc + 2]


def test_a_vm_file_saved_on_the_jit_tier_has_no_translated_pages(tmp_path):
    """PAGE_FLAG_TRANSLATED is where this run's tier installed blocks, not the VM's state: the
    VM file leaves it out, so a restore (on either tier) starts with no page flagged."""
    from rvh.snapshot import read_vm_file, restore_machine

    path = tmp_path / "jit.rvh"
    machine = Machine(MachineConfig(memory=16 << 20), output=lambda data: None)
    attach_tier(machine, threshold=8, synchronous=True, optimize_after=None)
    machine.load(str(GUESTS / "bench" / "intmem.elf"))
    machine.save_path, machine.save_at = str(path), 1_000_000
    machine.run_sync()
    assert machine.steps == 1_000_000
    flags = machine.bus.page_flags.copy()
    assert (flags & L.PAGE_FLAG_TRANSLATED).any()  # blocks were installed when it saved
    restored = restore_machine(read_vm_file(str(path)), output=lambda data: None)
    assert not (restored.bus.page_flags & L.PAGE_FLAG_TRANSLATED).any()
    untranslated = flags & np.uint8(~L.PAGE_FLAG_TRANSLATED & 0xFF)
    assert np.array_equal(restored.bus.page_flags, untranslated)


# a loop calling a function in the next page: a call and a return cross pages each time
CALLS_ACROSS_PAGES = """
.option norvc
    li t6, 3000
loop:
    mv a0, t6
    call far
    add a1, a1, a0
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
.balign 4096
far:
    slli a0, a0, 1
    xori a0, a0, 5
    ret
"""


def run_calls_across_pages(**options) -> dict:
    """CALLS_ACROSS_PAGES on the tier (attach_tier's ``options``), checked against the
    interpreter; the tier's statistics.  A call and its return cross pages: translated code
    goes on through the fetch translation in the TLB instead of returning to the kernel at
    each (3,000 calls and as many returns: nearly all of them chain)."""
    tiers = []
    interp = run_asm(CALLS_ACROSS_PAGES, max_insns=100_000)
    jit = run_asm(
        CALLS_ACROSS_PAGES,
        max_insns=100_000,
        setup=lambda machine: tiers.append(attach_tier(machine, **options)),
    )
    assert_same_snippet(interp, jit)
    stats = tiers[0].statistics()
    assert stats["instructions"] > 0.95 * jit.hart.instret
    assert stats["entries"] < 100, stats
    return stats


def test_quick_code_chains_to_code_in_another_page():
    stats = run_calls_across_pages(optimize_after=None)
    assert stats["blocks_baseline"] == 0 and stats["blocks_compiled"] > 0


# CALLS_ACROSS_PAGES with a second function in the called page, called first: after the TLB
# is flushed, the kernel refills the page's fetch translation there (with a slow tag, the
# page holding a breakpoint) before the call that chains to ``far``
CALLS_INTO_A_BREAKPOINT_PAGE = """
.option norvc
    li t6, 3000
loop:
    mv a0, t6
    call first
    call far
    add a1, a1, a0
    addi t6, t6, -1
    bnez t6, loop
    j __snippet_end
.balign 4096
first:
    addi a2, a2, 1
    ret
far:
    slli a0, a0, 1
    xori a0, a0, 5
    ret
"""


def break_in_a_page_chained_into(**options) -> Tier:
    """CALLS_INTO_A_BREAKPOINT_PAGE run hot on the tier (attach_tier's ``options``) until
    its calls and returns chain across pages, then a breakpoint (as the gdb stub sets one:
    the TLB flushed) on ``far``'s second instruction: no chain may run past it, though the
    TLB has the page's translation again (with its slow tag) when ``far`` is called."""
    source = CALLS_INTO_A_BREAKPOINT_PAGE + "\n__snippet_end:\n wfi\n"
    code, symbols = assemble_with_symbols(source)
    machine = Machine(MachineConfig(tier="interp"), output=lambda _: None)
    machine.machine[L.M_MTIMECMP] = -1
    tier = attach_tier(machine, **options)
    machine.bus.write_bytes(RAM_BASE, code)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    hart.run(5_000)
    entries = tier.statistics()["entries"]
    hart.run(5_000)
    assert tier.statistics()["entries"] - entries < 10  # chaining: no returns to the kernel
    bp = symbols["far"] + 4
    passes_left = hart.x(31)
    machine.machine[L.M_BREAKPOINTS] = 1
    machine.machine[L.M_BREAK_ADDR] = bp
    hart.flush_tlb()
    assert hart.run(100_000) == Exit.BREAKPOINT
    assert hart.pc == bp and hart.x(10) == 2 * hart.x(31)  # slli done, xori not
    assert hart.x(31) >= passes_left - 1  # at the first call of ``far`` since
    assert hart.x(12) == 3000 - hart.x(31) + 1  # ``first`` ran in this pass too
    return tier


def test_a_breakpoint_stops_quick_code_chaining_into_its_page():
    tier = break_in_a_page_chained_into(optimize_after=None)
    assert tier.statistics()["blocks_compiled"] > 0

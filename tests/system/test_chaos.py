"""Chaos: random system-level code must never crash, hang or escape the emulator.

Two generators, each biased to what a buggy or hostile guest does to a machine rather than to
what a compiler emits:

- M-mode code full of CSR writes of random values (satp, hgatp, PMP, counters, interrupt
  enables...), loads and stores of every size at device registers (CLINT, PLIC, UART, test
  device, virtio slots, unmapped holes), xRETs, fences, HFENCEs, HLV/HSV and random words, with
  a trap handler that steps over whatever faults;
- S-mode code on the built-in SBI making SBI calls with wild arguments (every extension,
  random function ids, pointers into RAM, MMIO and nowhere), on 1 to 4 harts.

Each run must end with a status (the limit, a deadlock, a guest exit, an SBI shutdown): never
a Python exception or an emulator error, and ``--max-insns`` must stop it exactly (a hang is a
test that never ends: these found a guest rewinding minstret and a trap storm outliving the
limit).  Without
devices whose timing depends on host threads, the same seed must give the same machine state
twice: determinism is what snapshots, migration and the differential tests stand on.

CI runs a few seeds; ``tools/chaos N`` runs N of each (``RVH_CHAOS_SEEDS``, ``RVH_CHAOS_BUDGET``).
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import pytest
from support import assemble, build_elf, needs_toolchain

from rvh.config import RAM_BASE, MachineConfig
from rvh.errors import EXIT_EMULATOR_ERROR, EXIT_INSN_LIMIT
from rvh.machine import Machine, RunResult

pytestmark = needs_toolchain

SEEDS = int(os.environ.get("RVH_CHAOS_SEEDS", "7"))  # seeds 5 and 6 run two harts
BUDGET = int(os.environ.get("RVH_CHAOS_BUDGET", "200000"))
FIRST_SEED = int(os.environ.get("RVH_CHAOS_FIRST_SEED", "0"))

CODE = RAM_BASE + 0x1000  # the random code, 32 KiB
CODE_WORDS = 8192
MORE_CODE = RAM_BASE + 0x100000  # more of it, for wild jumps to land on
SCRATCH = RAM_BASE + 0x300000  # the trap handler's counter and spill slot

# every CSR a machine-level guest might scribble on, but mtvec/medeleg/mideleg: the handler
# must keep receiving the traps, or most runs would end in the first trap storm
CSRS = [
    0x300, 0x304, 0x341, 0x342, 0x343, 0x344, 0x180, 0x100, 0x104, 0x105, 0x141, 0x144,
    0x600, 0x602, 0x603, 0x604, 0x605, 0x606, 0x607, 0x60A, 0x643, 0x645, 0x680,
    0x200, 0x204, 0x205, 0x240, 0x241, 0x242, 0x243, 0x244, 0x280,
    0x3A0, 0x3A2, 0x3B0, 0x3B1, 0x3B2, 0x30A, 0x10A, 0x14D, 0x24D, 0x306, 0x106, 0x320,
    0xB00, 0xB02, 0x34A, 0x34B, 0x64A,
]  # fmt: skip
DEVICES = [
    0x0, 0x1000, 0x2000000, 0x2004000, 0x200BFF8, 0xC000000, 0xC002000, 0xC200000, 0xC201004,
    0x10000000, 0x10000005, 0x100000, 0x10001000, 0x10001050, 0x10001070, 0x10001030,
    0x10001038, 0x10001044, 0x10001080, 0x10001090, 0x10008000, 0x10008050,
    RAM_BASE, RAM_BASE + 0x1000, RAM_BASE + (128 << 20) - 0x1000, RAM_BASE + (128 << 20),
]  # fmt: skip
SYSTEM_WORDS = [
    0x30200073,  # mret
    0x10200073,  # sret
    0x00000073,  # ecall
    0x00100073,  # ebreak
    0x12000073,  # sfence.vma
    0x22000073,  # hfence.vvma
    0x62000073,  # hfence.gvma
    0x0000100F,  # fence.i
    0x0FF0000F,  # fence
]

# Exceptions resume after the faulting instruction; fetch faults resume somewhere else in the
# code (mepc + 4 would fault again); interrupts are disabled (mie = 0) so they cannot storm.
# The handler always returns to M-mode with V = 0: the code may wander into S, U, VS and VU
# through its own xRETs, but each trap brings it back.
HANDLER = f"""
    la t6, handler
    csrw mtvec, t6
    li t6, {CODE:#x}
    jr t6
    .balign 64
handler:
    csrr t6, mcause
    bltz t6, interrupt
    addi t6, t6, -1
    beqz t6, refetch
    addi t6, t6, -11
    beqz t6, refetch
    addi t6, t6, -8
    beqz t6, refetch
    csrr t6, mepc
    addi t6, t6, 4
    csrw mepc, t6
    j back
refetch:
    li t6, {SCRATCH:#x}
    sd t5, 8(t6)
    ld t5, 0(t6)
    addi t5, t5, 68
    sd t5, 0(t6)
    andi t5, t5, 0x7fc
    slli t5, t5, 4
    li t6, {CODE:#x}
    add t5, t5, t6
    csrw mepc, t5
    li t6, {SCRATCH:#x}
    ld t5, 8(t6)
    j back
interrupt:
    csrw mie, zero
back:
    li t6, 0x1800
    csrs mstatus, t6
    li t6, 1
    slli t6, t6, 39
    csrc mstatus, t6
    mret
"""


def load_constant(rd: int, value: int, out: list[int]) -> None:
    """addi/slli/ori words that put a 64-bit constant in ``rd``."""
    value &= (1 << 64) - 1
    out.append(0x13 | rd << 7)  # addi rd, x0, 0
    for chunk in range(6):
        width = 11 if chunk < 5 else 9
        bits = (value >> (64 - 11 * (chunk + 1))) & 0x7FF if chunk < 5 else value & 0x1FF
        out.append(0x1013 | rd << 7 | rd << 15 | width << 20)  # slli rd, rd, width
        out.append(0x6013 | rd << 7 | rd << 15 | bits << 20)  # ori rd, rd, bits


def machine_code(rng: random.Random, words: int) -> bytes:
    out: list[int] = []
    while len(out) < words:
        kind = rng.random()
        rd = rng.randrange(1, 31)  # t6 (x31) belongs to the handler
        if kind < 0.25:
            out.append(rng.getrandbits(32))
        elif kind < 0.35:  # two compressed instructions, or a half of one
            out.append(rng.getrandbits(16) | rng.getrandbits(16) << 16)
        elif kind < 0.6:
            value = rng.choice(
                [
                    rng.getrandbits(64),
                    0,
                    -1,
                    1 << 63,
                    8 << 60 | rng.getrandbits(20),  # Sv39 / Sv39x4 with a small root
                    9 << 60 | rng.getrandbits(20),  # Sv48
                    rng.getrandbits(12),
                    RAM_BASE + rng.getrandbits(27),
                ]
            )
            load_constant(rd, value, out)
            csr, funct3 = rng.choice(CSRS), rng.choice([1, 2, 3])  # csrrw, csrrs, csrrc
            out.append(0x73 | funct3 << 12 | rd << 15 | csr << 20 | rng.randrange(32) << 7)
        elif kind < 0.8:
            address = rng.choice(DEVICES) + rng.randrange(256) * rng.choice([1, 4, 8])
            load_constant(rd, address, out)
            if rng.random() < 0.5:
                out.append(0x23 | rng.randrange(4) << 12 | rd << 15 | rng.randrange(32) << 20)
            else:
                out.append(0x03 | rng.randrange(7) << 12 | rd << 15 | rng.randrange(1, 31) << 7)
        else:
            out.append(
                rng.choice(
                    [
                        *SYSTEM_WORDS,
                        0x6C00C073 | rd << 15 | rng.randrange(1, 31) << 7,  # hlv.d
                        0x6200C073 | rd << 15,  # hsv.b (approximately)
                        0x7000C073 | rd << 15,
                    ]
                )
            )
    return np.array(out[:words], dtype=np.uint32).tobytes()


def machine_run(seed: int, *, devices: bool, tmp_path) -> tuple[Machine, RunResult]:
    rng = random.Random(seed)
    drives, netdevs = [], []
    if devices:
        image = tmp_path / "chaos.img"
        image.write_bytes(random.Random(seed).randbytes(1 << 20))
        drives = [f"file={image}"]
        netdevs = ["hub,id=h0"] if seed % 2 else []
    config = MachineConfig(
        memory=128 << 20,
        harts=rng.choice([1, 1, 2]),
        max_instructions=BUDGET,
        serial="null",
        console_input=False,
        drives=drives,
        netdevs=netdevs,
    )
    machine = Machine(config, output=lambda _: None)
    machine.bus.write_bytes(RAM_BASE, assemble(HANDLER))
    machine.bus.write_bytes(CODE, machine_code(rng, CODE_WORDS))
    machine.bus.write_bytes(MORE_CODE, machine_code(rng, CODE_WORDS // 2))
    machine.set_boot(RAM_BASE)
    return machine, machine.run_sync()


def assert_ended_cleanly(machine: Machine, result: RunResult) -> None:
    assert result.status != EXIT_EMULATOR_ERROR, result.reason
    assert machine.steps <= BUDGET
    if result.status == EXIT_INSN_LIMIT:
        assert machine.steps == BUDGET


SEED_RANGE = range(FIRST_SEED, FIRST_SEED + SEEDS)


@pytest.mark.parametrize("seed", SEED_RANGE)
def test_random_machine_code_ends_cleanly(seed, tmp_path):
    assert_ended_cleanly(*machine_run(seed, devices=True, tmp_path=tmp_path))


def fingerprint(machine: Machine) -> str:
    digest = hashlib.sha256()
    for hart in machine.harts:
        digest.update(hart.state.tobytes())
    digest.update(machine.machine.tobytes())
    digest.update(machine.bus.memory.tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("seed", SEED_RANGE)
def test_random_machine_code_is_deterministic(seed, tmp_path):
    first, first_result = machine_run(seed, devices=False, tmp_path=tmp_path)
    second, second_result = machine_run(seed, devices=False, tmp_path=tmp_path)
    assert (first_result.status, first_result.reason, first.steps) == (
        second_result.status,
        second_result.reason,
        second.steps,
    )
    assert fingerprint(first) == fingerprint(second)


SBI_EXTENSIONS = [
    0x10, 0x54494D45, 0x735049, 0x52464E43, 0x48534D, 0x53525354, 0x4442434E,
    0, 1, 2, 3, 4, 5, 6, 7, 0x4E41434C, 0x504D55, 0x535441, 0x5355535020,
]  # fmt: skip
PAYLOAD = 0x8020_0000


def wild_value(rng: random.Random) -> int:
    return rng.choice(
        [
            0,
            1,
            2,
            3,
            -1,
            rng.getrandbits(64),
            PAYLOAD + rng.getrandbits(22),
            RAM_BASE + rng.getrandbits(16),  # the firmware's own memory
            RAM_BASE + rng.getrandbits(28),
            rng.getrandbits(12),
            1 << 63,
            RAM_BASE + (256 << 20) - 8,  # the last bytes of RAM
            0x10000000,
            0x1000,
        ]
    )


def sbi_payload(rng: random.Random, count: int) -> str:
    lines = [
        "la t0, handler",
        "csrw stvec, t0",
        "j body",
        ".balign 4",
        "handler:",  # step over whatever faulted and stay in S-mode
        "csrr t6, sepc",
        "addi t6, t6, 4",
        "csrw sepc, t6",
        "li t6, 0x100",
        "csrs sstatus, t6",
        "sret",
        "body:",
    ]
    for _ in range(count):
        kind = rng.random()
        if kind < 0.45:
            extension = rng.choice(SBI_EXTENSIONS)
            if extension == 0x53525354 and rng.random() < 0.8:
                extension = 0x10  # most system resets would end the run at once
            function = rng.randrange(9) if rng.random() < 0.9 else rng.getrandbits(32)
            lines += [f"li a7, {extension}", f"li a6, {function}"]
            lines += [f"li {r}, {wild_value(rng)}" for r in ("a0", "a1", "a2", "a3")]
            lines.append("ecall")
        elif kind < 0.6:
            csr = rng.choice(
                ["sstatus", "sie", "sip", "satp", "sscratch", "sepc", "stval", "scause"]
                + ["scounteren", "0x10a", "0x14d", "0x600", "0x680", "0x280", "0x645"]
            )
            lines += [f"li t0, {wild_value(rng)}", f"csrw {csr}, t0"]
        elif kind < 0.7:
            access = rng.choice(["sd a0, 0(t0)", "ld a0, 0(t0)", "sw a0, 0(t0)", "lbu a0, 0(t0)"])
            lines += [f"li t0, {wild_value(rng)}", access]
        elif kind < 0.75:
            lines.append(
                rng.choice(
                    [
                        "wfi",
                        "sfence.vma",
                        "fence.i",
                        "sret",
                        *map(".word {}".format, SYSTEM_WORDS[5:7]),
                    ]
                )
            )
        else:
            lines.append(f".word {rng.getrandbits(32)}")
    lines.append("1: j 1b")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", SEED_RANGE)
def test_random_sbi_calls_end_cleanly(seed, tmp_path):
    rng = random.Random(seed)
    elf = build_elf(sbi_payload(rng, 1500), tmp_path / "payload.elf", base=PAYLOAD)
    machine = Machine(
        MachineConfig(
            harts=rng.choice([1, 2, 4]),
            firmware_traps=True,
            max_instructions=BUDGET,
            console_input=False,
        ),
        output=lambda _: None,
    )
    machine.load_sbi_payload(str(elf))
    assert_ended_cleanly(machine, machine.run_sync())

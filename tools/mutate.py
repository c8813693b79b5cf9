"""Mutation score of the differential campaign: plant one bug in rvh, see if the campaign notices.

    tools/mutate [--mutant NAME ...] [--json] [--jobs N] [--refs DIR] [--list]

A *mutant* is rvh with one deliberate bug, planted through the data the kernel reads, so no
mutant costs a recompile:

* ``A=B``: instruction A executes as instruction B (mnemonics of ``rvh/isa/instructions.py``;
  a compressed B stands for the base instruction it expands to).  A's rows of the decode table
  (``rvh/cpu/tables.py``) get B's op id; A keeps its own operand format.
* ``CSR.write-FIELD`` / ``CSR.write+FIELD``: the CSR table's write mask loses / gains FIELD
  (a name of ``rvh/isa/csrs.py`` such as ``IP_SSIP``, or ``bitN``).
  ``CSR.kind=OTHER``: the CSR is read and written as OTHER is (its kind and write mask), e.g.
  ``sstatus.kind=mstatus`` reads all of mstatus; ``kind=plain`` is plain storage under the
  row's write mask (all bits when it has none).
* ``cause:A=B``: exception A is delivered with cause B (``rvh/isa/causes.py`` names, lower
  case, or numbers), through the machine array's ``M_CAUSE_MUTANT`` slots that ``take_trap``
  reads.  A trap *not taken* is an instruction mutant (``ecall=fence``).

The campaign is the CI share of the random-program campaign
(``tests/system/lockstep/test_random_programs.py``): its hypothesis tests (``*_agree_with_qemu``)
are replayed with the same derandomized seed and settings, their bodies replaced by a collector,
so the batches are exactly those CI runs, whatever kinds of program the generator makes.
Each distinct batch is traced once on QEMU 7.2 into the reference cache
(``build/campaign-refs/<sha256>.ref.gz``, keyed by the batch ELF's content and the hart
configuration, the ELF kept beside it); later runs need no QEMU.  A mutant is *killed* when
rvh, mutated, diverges from a reference in lockstep (``rvh.diff``); it runs the batches that
execute the mutated instruction (or CSR, or cause) most first and stops at its first kill.
Mutants run in parallel processes (``--jobs``).

The catalogue (``CATALOGUE``) covers every instruction class; ``docs/testing.md`` ("Mutation
score") gives the score and the reason each survivor survives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = ROOT / "tests" / "system" / "lockstep"
sys.path[:0] = [str(ROOT), str(CAMPAIGN), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from rvh.cpu import layout as L  # noqa: E402
from rvh.cpu import tables as T  # noqa: E402
from rvh.isa import csrs  # noqa: E402
from rvh.isa.causes import Exception_  # noqa: E402
from rvh.isa.instructions import BY_NAME as ENCODINGS  # noqa: E402
from rvh.isa.instructions import op_of  # noqa: E402
from rvh.trace import StateTrace  # noqa: E402

USAGE_ERROR = 2
DEFAULT_REFS = ROOT / "build" / "campaign-refs"
QEMU_LIMIT = 200_000  # instructions: what the campaign gives QEMU for one batch


class MutantError(ValueError):
    """A mutant name that does not parse or names nothing rvh has."""


# ---- mutants -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``apply`` edits a fresh machine's tables / machine array."""

    name: str
    kind: str  # "instruction", "csr" or "cause"
    target: str  # what it touches, for ordering the batches: a mnemonic, a CSR name, a cause
    identity: bool  # the change changes nothing (``add=add``): a control, never catalogued

    def apply(self, tables: np.ndarray, machine: np.ndarray) -> None:
        _APPLY[self.kind](self, tables, machine)


def _base_op(mnemonic: str) -> int:
    encoding = ENCODINGS[mnemonic]
    return op_of(encoding.expands_to or encoding.name)


def _instruction(name: str) -> Mutant:
    source, _, executed = name.partition("=")
    for mnemonic in (source, executed):
        if mnemonic not in ENCODINGS:
            raise MutantError(f"unknown instruction {mnemonic!r}")
    return Mutant(name, "instruction", source, _base_op(source) == _base_op(executed))


def _apply_instruction(mutant: Mutant, tables: np.ndarray, machine: np.ndarray) -> None:
    source, _, executed = mutant.name.partition("=")
    encoding = ENCODINGS[source]
    changed = 0
    for row in range(int(tables[T.T_ENTRIES]), int(tables[T.T_CSRS]), T.ENTRY_FIELDS):
        if (tables[row + T.ENTRY_MASK], tables[row + T.ENTRY_MATCH]) == (
            encoding.mask,
            encoding.match,
        ):
            tables[row + T.ENTRY_OP] = _base_op(executed)
            changed += 1
    if not changed:
        raise AssertionError(f"{source}: no decode-table row")


FIELDS = {
    name: int(value)
    for name, value in vars(csrs).items()
    if name.isupper() and isinstance(value, int) and name.startswith(("MSTATUS_", "IP_", "ENVCFG_"))
}


def _field(name: str) -> int:
    if name.startswith("bit") and name[3:].isdigit() and int(name[3:]) < 64:
        bit = 1 << int(name[3:])
        return bit - (1 << 64) if bit >> 63 else bit
    if name in FIELDS:
        return FIELDS[name]
    raise MutantError(f"unknown field {name!r} (a csrs.py name such as IP_SSIP, or bitN)")


def _csr_row(name: str) -> csrs.Csr:
    if name not in csrs.BY_NAME:
        raise MutantError(f"unknown CSR {name!r}")
    return csrs.BY_NAME[name]


def _csr(name: str) -> Mutant:
    register, _, change = name.partition(".")
    row = _csr_row(register)
    if change.startswith("kind="):
        other = change[5:]
        if other != "plain":
            _csr_row(other)
        identity = other == register or (other == "plain" and row.kind == csrs.Kind.PLAIN)
    elif change.startswith(("write-", "write+")):
        bits = _field(change[6:])
        gains = change[5] == "+"
        identity = (row.write_mask & bits) == (bits if gains else 0)
        if row.kind not in _MASKED_KINDS:
            raise MutantError(f"{register}'s writes do not go through the table's write mask")
    else:
        raise MutantError(f"{name!r}: expected CSR.write-FIELD, CSR.write+FIELD or CSR.kind=CSR")
    return Mutant(name, "csr", register, identity)


# the kinds whose writes csr_write masks with the table's write mask (rvh/cpu/csr.py)
_MASKED_KINDS = {
    csrs.Kind.PLAIN,
    csrs.Kind.MENVCFG,
    csrs.Kind.HIDELEG,
    csrs.Kind.HCOUNTEREN,
    csrs.Kind.MIDELEG,
    csrs.Kind.MEDELEG,
    csrs.Kind.HENVCFG,
}


def _apply_csr(mutant: Mutant, tables: np.ndarray, machine: np.ndarray) -> None:
    register, _, change = mutant.name.partition(".")
    number = _csr_row(register).number

    def at(csr: int, column: int) -> int:
        return int(tables[T.T_CSRS]) + csr * csrs.CSR_COLUMNS + column

    if change.startswith("kind="):
        other = change[5:]
        if other == "plain":
            kind, mask = int(csrs.Kind.PLAIN), int(tables[at(number, csrs.CSR_WRITE_MASK)]) or -1
        else:
            source = _csr_row(other).number
            kind = int(tables[at(source, csrs.CSR_KIND)])
            mask = int(tables[at(source, csrs.CSR_WRITE_MASK)])
        tables[at(number, csrs.CSR_KIND)] = kind
        tables[at(number, csrs.CSR_WRITE_MASK)] = mask
        return
    bits = _field(change[6:])
    if change[5] == "+":
        tables[at(number, csrs.CSR_WRITE_MASK)] |= bits
    else:
        tables[at(number, csrs.CSR_WRITE_MASK)] &= ~bits


def _cause_code(name: str) -> int:
    if name.isdigit() and int(name) < L.CAUSE_MUTANT_CODES:
        return int(name)
    try:
        return int(Exception_[name.upper()])
    except KeyError:
        raise MutantError(f"unknown exception cause {name!r}") from None


def _cause(name: str) -> Mutant:
    source, _, delivered = name[len("cause:") :].partition("=")
    code, other = _cause_code(source), _cause_code(delivered)
    return Mutant(name, "cause", str(code), code == other)


def _apply_cause(mutant: Mutant, tables: np.ndarray, machine: np.ndarray) -> None:
    source, _, delivered = mutant.name[len("cause:") :].partition("=")
    machine[L.M_CAUSE_MUTANT + _cause_code(source)] = _cause_code(delivered) + 1


_APPLY: dict[str, Callable[[Mutant, np.ndarray, np.ndarray], None]] = {
    "instruction": _apply_instruction,
    "csr": _apply_csr,
    "cause": _apply_cause,
}


def parse_mutant(name: str) -> Mutant:
    """The mutant a name describes; MutantError (one line) when it names nothing."""
    if name.startswith("cause:") and "=" in name:
        return _cause(name)
    if "." in name.partition("=")[0] and name.partition(".")[0] in csrs.BY_NAME:
        return _csr(name)
    if name.count("=") == 1 and all(name.partition("=")[::2]):
        return _instruction(name)
    raise MutantError(f"{name!r}: expected A=B, CSR.write-FIELD, CSR.kind=CSR or cause:A=B")


# ---- the catalogue ---------------------------------------------------------------------------
# (class, mutants).  Each is a bug an emulator could plausibly have: a neighbour in the same
# family (sign, width, operation, direction), never two names for one operation.
CATALOGUE: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "ALU (register)",
        (
            "add=sub", "sub=add", "add=or", "sll=srl", "srl=sra", "sra=srl", "slt=sltu",
            "sltu=slt", "xor=or", "or=xor", "and=or", "addw=add", "subw=sub", "sllw=sll",
            "srlw=srl", "sraw=sra", "sraw=srlw", "addw=subw",
        ),
    ),
    (
        "ALU (immediate), upper immediates",
        (
            "addi=ori", "addi=xori", "slti=sltiu", "sltiu=slti", "xori=ori", "ori=xori",
            "andi=ori", "addiw=addi", "lui=auipc", "auipc=lui",
        ),
    ),
    (
        "shifts (immediate)",
        ("slli=srli", "srli=srai", "srai=srli", "slliw=slli", "srliw=srli", "sraiw=srai",
         "sraiw=srliw"),
    ),
    (
        "branches",
        ("beq=bne", "bne=beq", "blt=bltu", "bge=bgeu", "bltu=blt", "bgeu=bge", "blt=bge",
         "bgeu=bltu"),
    ),
    ("jumps", ("jal=jalr", "jalr=jal")),
    (
        "loads (width, sign)",
        ("lb=lbu", "lbu=lb", "lh=lhu", "lhu=lh", "lw=lwu", "lwu=lw", "ld=lw", "lw=lh",
         "lh=lb", "lwu=ld"),
    ),
    ("stores (width)", ("sb=sh", "sh=sw", "sw=sd", "sd=sw", "sh=sb")),
    (
        "M",
        (
            "mul=mulh", "mulh=mulhu", "mulh=mulhsu", "mulhsu=mulhu", "mulhu=mulhsu",
            "div=divu", "divu=div", "rem=remu", "remu=rem", "div=rem", "mulw=mul",
            "divw=divuw", "divuw=divw", "remw=remuw", "remuw=remw", "divw=div", "remw=rem",
        ),
    ),
    (
        "A (LR/SC, AMOs)",
        (
            "lr.w=lr.d", "lr.d=lr.w", "sc.w=sc.d", "sc.d=sc.w", "sc.w=amoswap.w",
            "amoswap.w=amoswap.d", "amoswap.d=amoadd.d", "amoadd.w=amoadd.d",
            "amoadd.d=amoor.d", "amoxor.w=amoor.w", "amoor.w=amoxor.w", "amoand.d=amoor.d",
            "amomin.w=amominu.w", "amomax.d=amomaxu.d", "amominu.d=amomin.d",
            "amomaxu.w=amomax.w", "amomin.d=amomax.d",
        ),
    ),
    (
        "C",
        (
            "c.addi4spn=c.addiw", "c.addi=c.addiw", "c.addiw=c.addi", "c.lw=c.ld",
            "c.ld=c.lw", "c.sw=c.sd", "c.sd=c.sw", "c.lwsp=c.ldsp", "c.ldsp=c.lwsp",
            "c.swsp=c.sdsp", "c.sdsp=c.swsp", "c.srli=c.srai", "c.srai=c.srli",
            "c.slli=c.srli", "c.andi=ori", "c.sub=c.xor", "c.xor=c.or", "c.or=c.and",
            "c.and=c.or", "c.subw=c.addw", "c.addw=c.subw", "c.mv=c.sub", "c.add=c.sub",
            "c.beqz=c.bnez", "c.bnez=c.beqz", "c.j=c.jr", "c.jalr=c.j", "c.ebreak=c.addi",
        ),
    ),
    (
        "Zicsr",
        ("csrrw=csrrs", "csrrs=csrrc", "csrrc=csrrs", "csrrs=csrrw", "csrrwi=csrrsi",
         "csrrsi=csrrci", "csrrci=csrrsi", "csrrwi=csrrw"),
    ),
    (
        "system",
        ("ecall=ebreak", "ebreak=ecall", "ecall=fence", "ebreak=fence", "mret=sret",
         "sret=mret", "wfi=ecall", "sfence.vma=hfence.vvma"),
    ),
    ("H", ("hlv.w=hlv.wu", "hsv.w=hsv.h")),
    (
        "CSR masks",
        (
            "mscratch.write-bit63", "sscratch.write-bit0", "mcause.write-bit63",
            "scause.write-bit63", "mtval.write-bit31", "stval.write-bit32",
            "mideleg.write-IP_SSIP", "mideleg.write+IP_MSIP", "medeleg.write-bit8",
            "mcounteren.write-bit0", "scounteren.write-bit2", "sstatus.kind=mstatus",
            "sie.kind=mie", "sip.kind=mip", "stvec.kind=plain", "mideleg.kind=plain",
            "hedeleg.write-bit8",
        ),
    ),
    (
        "trap causes",
        (
            "cause:illegal_instruction=breakpoint", "cause:breakpoint=illegal_instruction",
            "cause:load_access_fault=store_access_fault",
            "cause:store_access_fault=load_access_fault",
            "cause:load_address_misaligned=load_access_fault",
            "cause:store_address_misaligned=store_access_fault",
            "cause:store_address_misaligned=load_address_misaligned",
            "cause:ecall_from_m=ecall_from_s",
        ),
    ),
)  # fmt: skip


def catalogue() -> list[Mutant]:
    mutants = [parse_mutant(name) for _, names in CATALOGUE for name in names]
    names = [m.name for m in mutants]
    assert len(set(names)) == len(names), "a mutant is catalogued twice"
    assert not any(m.identity for m in mutants), [m.name for m in mutants if m.identity]
    return mutants


# ---- the campaign's batches and their references ---------------------------------------------
@dataclass(frozen=True)
class Batch:
    key: str  # sha256 of the ELF and the hart configuration
    hypervisor: bool
    elf: bytes


def campaign_batches() -> list[Batch]:
    """The CI campaign's batches, in order, duplicates dropped.

    Every hypothesis test of ``test_random_programs.py`` named ``*_agree_with_qemu`` is run
    with its own strategies and settings, the seed derandomization gives it (or
    ``RVH_FUZZ_SEED``, as ``tools/fuzz`` runs it) and a body that only collects: its one
    argument is a batch, ``(hypervisor, programs)``, that ``build_batch`` and ``elf_image``
    turn into the ELF the test compares."""
    import test_random_programs as ci
    from hypothesis import seed
    from hypothesis.internal.conjecture.utils import int_from_bytes
    from hypothesis.internal.reflection import function_digest
    from randprog import build_batch, elf_image

    drawn: list[tuple[bool, list]] = []

    def collect(**arguments: object) -> None:
        (batch,) = arguments.values()
        drawn.append(batch)  # type: ignore[arg-type]

    forced = os.environ.get("RVH_FUZZ_SEED")
    tests = [
        test
        for name, test in sorted(vars(ci).items())
        if name.startswith("test_") and name.endswith("_agree_with_qemu")
        if hasattr(test, "hypothesis")
    ]
    if not tests:
        raise MutantError("test_random_programs.py has no *_agree_with_qemu hypothesis test")
    for test in tests:
        original = test.hypothesis.inner_test
        chosen = int(forced) if forced else int_from_bytes(function_digest(original))
        test.hypothesis.inner_test = collect
        try:
            seed(chosen)(test)()
        finally:
            test.hypothesis.inner_test = original
            test._hypothesis_internal_use_seed = None
    batches: dict[str, Batch] = {}
    for hypervisor, programs in drawn:
        elf = elf_image(build_batch(programs))
        key = hashlib.sha256(elf + (b"H" if hypervisor else b"-")).hexdigest()
        batches.setdefault(key, Batch(key, hypervisor, elf))
    return list(batches.values())


def _write_atomically(path: Path, data: bytes) -> None:
    """Two runs may fill the cache at once: a reader sees a whole file or none."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    os.replace(partial, path)


def _campaign_digest() -> str:
    """What decides the campaign's batches: the generator and test sources, hypothesis's
    version and the campaign's environment knobs."""
    import hypothesis

    digest = hashlib.sha256(hypothesis.__version__.encode())
    for source in sorted(CAMPAIGN.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    for knob in ("RVH_FUZZ_EXAMPLES", "RVH_FUZZ_SEED"):
        digest.update(f"{knob}={os.environ.get(knob, '')}".encode())
    return digest.hexdigest()


def cached_campaign_batches(refs: Path) -> list[Batch]:
    """:func:`campaign_batches`, remembered in the cache (drawing them takes half a minute)
    until the generator, the campaign test or hypothesis changes."""
    index = refs / f"campaign-{_campaign_digest()[:16]}.json"
    if index.exists():
        batches = []
        for key, hypervisor in json.loads(index.read_text()):
            elf = _reference_paths(refs, key)[0]
            if not elf.exists():
                break
            batches.append(Batch(key, hypervisor, elf.read_bytes()))
        else:
            return batches
    batches = campaign_batches()
    refs.mkdir(parents=True, exist_ok=True)
    for batch in batches:
        elf = _reference_paths(refs, batch.key)[0]
        if not elf.exists():
            _write_atomically(elf, batch.elf)
    _write_atomically(index, json.dumps([(b.key, b.hypervisor) for b in batches]).encode())
    return batches


def _reference_paths(refs: Path, key: str) -> tuple[Path, Path]:
    return refs / f"{key}.elf", refs / f"{key}.ref.gz"


def _record(job: tuple[str, bool, str]) -> str | None:
    """Trace one batch on QEMU into the cache; returns an error line or None."""
    from rvh.diff import run_qemu
    from rvh.trace import write_reference

    elf, hypervisor, ref = job
    run = run_qemu(elf, hypervisor=hypervisor, max_instructions=QEMU_LIMIT, timeout=120)
    if run.truncated:
        return f"{elf}: QEMU did not finish the batch"
    run.trace.meta["sha256"] = hashlib.sha256(Path(elf).read_bytes()).hexdigest()
    partial = ref.removesuffix(".ref.gz") + f".{os.getpid()}.partial.ref.gz"
    write_reference(run.trace, partial)
    os.replace(partial, ref)
    return None


def record_references(batches: Sequence[Batch], refs: Path, jobs: int) -> int:
    """Trace the batches that have no reference yet; returns how many were traced."""
    refs.mkdir(parents=True, exist_ok=True)
    missing = []
    for batch in batches:
        elf, ref = _reference_paths(refs, batch.key)
        if not elf.exists():
            _write_atomically(elf, batch.elf)
        if not ref.exists():
            missing.append((str(elf), batch.hypervisor, str(ref)))
    if not missing:
        return 0
    from rvh.diff import qemu_available

    if not qemu_available():
        raise MutantError(
            f"{len(missing)} campaign batches have no QEMU reference in {refs} and "
            "qemu-system-riscv64 (7.2) is not installed to record them"
        )
    print(f"mutate: tracing {len(missing)} batches on QEMU into {refs}", file=sys.stderr)
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for error in pool.imap_unordered(_record, missing):
            if error:
                raise MutantError(error)
    return len(missing)


# ---- running mutants ---------------------------------------------------------------------------
@dataclass
class Loaded:
    batch: Batch
    elf: str
    trace: StateTrace
    touches: Counter  # instruction mnemonics, CSR names and cause codes the reference meets


def _touches(batch: Batch, trace: StateTrace) -> Counter:
    """What QEMU's run of a batch executes: the mnemonic at every pc, CSR names of CSR
    instructions, and the exception codes it delivers (a new mcause/scause)."""
    from rvh.isa.disasm import decode

    image = batch.elf[0x1000:]  # elf_image: one segment at file offset 0x1000, at BASE
    counts: Counter = Counter()
    rows = trace.rows
    pcs = rows[:, trace.column("pc")].astype(np.int64)
    for pc, times in Counter(pcs.tolist()).items():
        at = pc - 0x8000_0000
        if not 0 <= at < len(image) - 1:
            continue
        bits = int.from_bytes(image[at : at + 4].ljust(4, b"\0"), "little")
        ins = decode(bits if bits & 3 == 3 else bits & 0xFFFF)
        if ins is None:
            continue
        counts[ins.name] += times
        csr = (
            csrs.BY_NUMBER.get(ins.operands.get("csr", -1)) if ins.name.startswith("csr") else None
        )
        if csr is not None:
            counts[csr.name] += times
    for field in ("mcause", "scause"):
        if field in trace.fields:
            column = rows[:, trace.column(field)]
            changed = column[1:][column[1:] != column[:-1]]
            counts.update(str(int(c)) for c in changed if int(c) < L.CAUSE_MUTANT_CODES)
    return counts


_LOADED: list[Loaded] = []


def load_references(batches: Sequence[Batch], refs: Path) -> list[Loaded]:
    from rvh.trace import read_reference

    loaded = []
    for batch in batches:
        elf, ref = _reference_paths(refs, batch.key)
        trace = read_reference(ref)
        loaded.append(Loaded(batch, str(elf), trace, _touches(batch, trace)))
    return loaded


@dataclass
class Outcome:
    mutant: str
    killed: bool
    batches: int  # batches run
    by: str = ""  # the batch that killed it (its key), and where
    seconds: float = 0.0


def run_mutant(mutant: Mutant) -> Outcome:
    """Run ``mutant`` over the loaded batches, most relevant first, to its first kill."""
    from rvh.diff import Stepper, lockstep, make_machine

    start = time.monotonic()
    order = sorted(range(len(_LOADED)), key=lambda i: (-_LOADED[i].touches[mutant.target], i))
    for run, index in enumerate(order, 1):
        loaded = _LOADED[index]
        machine = make_machine(loaded.elf, hypervisor=loaded.batch.hypervisor, output=None)
        mutant.apply(machine.tables, machine.machine)
        trace = loaded.trace
        try:
            result = lockstep(Stepper(machine, trace.fields), trace, context=0)
        except Exception as error:  # noqa: BLE001 - the campaign's test would fail here too
            where = f"{loaded.batch.key[:12]}: the comparison failed: {error!r}"
            return Outcome(mutant.name, True, run, where, time.monotonic() - start)
        d = result.divergence
        if d is not None:
            where = f"{loaded.batch.key[:12]} at instruction {d.index} ({d.disassembly})"
            return Outcome(mutant.name, True, run, where, time.monotonic() - start)
    return Outcome(mutant.name, False, len(order), "", time.monotonic() - start)


def run_mutants(mutants: Sequence[Mutant], jobs: int, report: Callable[[Outcome], None]) -> None:
    if jobs <= 1 or len(mutants) <= 1:
        for mutant in mutants:
            report(run_mutant(mutant))
        return
    # fork after the references are loaded: the workers share them
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for outcome in pool.imap_unordered(run_mutant, mutants):
            report(outcome)


# ---- command line ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/mutate",
        description="Mutation score of the CI differential campaign against recorded QEMU "
        "references (docs/testing.md, 'Mutation score').",
    )
    parser.add_argument(
        "--mutant",
        action="append",
        metavar="NAME",
        help="run this mutant (A=B, CSR.write-FIELD, CSR.write+FIELD, CSR.kind=CSR, "
        "cause:A=B) instead of the catalogue; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    parser.add_argument(
        "--refs", type=Path, default=DEFAULT_REFS, help="reference cache (build/campaign-refs)"
    )
    args = parser.parse_args(argv)
    try:
        if args.mutant:
            mutants = [parse_mutant(name) for name in args.mutant]
        else:
            mutants = catalogue()
        if args.list:
            for group, names in CATALOGUE:
                print(f"{group}: {' '.join(names)}")
            return 0
        if args.jobs < 1:
            raise MutantError("--jobs must be at least 1")
        start = time.monotonic()
        batches = cached_campaign_batches(args.refs)
        traced = record_references(batches, args.refs, args.jobs)
        _LOADED[:] = load_references(batches, args.refs)
    except MutantError as error:
        print(f"tools/mutate: {error}", file=sys.stderr)
        return USAGE_ERROR
    if not args.json:
        print(
            f"mutate: {len(mutants)} mutants over {len(batches)} distinct campaign batches "
            f"({traced} traced on QEMU now)"
        )
    outcomes: dict[str, Outcome] = {}

    def report(outcome: Outcome) -> None:
        outcomes[outcome.mutant] = outcome
        if not args.json:
            verdict = "killed" if outcome.killed else "SURVIVED"
            print(
                f"  {outcome.mutant:<44} {verdict:<9} {outcome.batches:4d} batches "
                f"{outcome.seconds:6.1f} s  {outcome.by}",
                flush=True,
            )

    run_mutants(mutants, args.jobs, report)
    killed = [m.name for m in mutants if outcomes[m.name].killed]
    survived = [m.name for m in mutants if not outcomes[m.name].killed]
    score = len(killed) / len(mutants)
    if args.json:
        print(json.dumps({"score": score, "killed": killed, "survived": survived}))
    else:
        print(
            f"mutation score: {len(killed)}/{len(mutants)} = {100 * score:.1f}% "
            f"({time.monotonic() - start:.0f} s)"
        )
        if survived:
            print("survived: " + " ".join(survived))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deviation rules on a budget: the instruction classes each rule of ``rvh.diff``'s catalogue
may fire on in the random campaigns.

A rule adopts QEMU's outcome where QEMU 7.2 departs from the spec; a rule grown too broad would
adopt it where rvh is wrong, and the campaign would pass.  So each rule declares where it may
fire - the classes of the instruction at which it applies, from its description in
docs/testing.md - and the campaign fails when it fires anywhere else (``check``).  ``ANY`` is
for the rules about trap entry, interrupts or a dump field, which apply whatever instruction
the hart was at; each says why.  Keyed by the rule's name (rvh.diff's ``Deviation.name``).
"""

from __future__ import annotations

from collections.abc import Iterable

from rvh.isa.disasm import decode

BASE = 0x8000_0000
UPPER = 0xFFFF_FFFF_0000_0000
ANY = frozenset({"*"})

LOAD = {"lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"}
STORE = {"sb", "sh", "sw", "sd"}
CLASS_OF = {
    **dict.fromkeys(LOAD, "load"),
    **dict.fromkeys(STORE, "store"),
    **dict.fromkeys(("mret", "sret"), "xret"),
    "wfi": "wfi",
    "sfence.vma": "sfence",
    "hfence.vvma": "hfence",
    "hfence.gvma": "hfence",
    "ecall": "ecall",
    "ebreak": "ebreak",
    "jal": "jump",
    "jalr": "jump",
    "fence": "fence",
    "fence.i": "fence",
}
CLASSES = {
    "reset", "illegal", "alu", "branch", "jump", "load", "store", "amo", "lr", "sc", "csr",
    "xret", "wfi", "sfence", "hfence", "hlv", "hsv", "ecall", "ebreak", "fence", "float",
}  # fmt: skip
ILLEGAL_TRAPS = {"illegal", "csr", "xret", "wfi", "sfence", "hfence", "hlv", "hsv"}
ACCESSES = {"load", "store", "amo", "lr", "sc", "hlv", "hsv"}

RULE_CLASSES: dict[str, frozenset[str]] = {
    name: frozenset(classes)
    for name, classes in {
        "amo-misaligned-cause": {"amo", "sc"},
        "amo-access-fault-cause": {"amo", "sc"},
        "csr-set-clear-zero-read-only": {"csr"},
        "sc-fails-before-trapping": {"sc"},
        "sc-word-after-lr-double": {"sc"},
        "counters-read-virtual-clock": {"csr"},
        "machine-id-values": {"csr"},
        "epc-bit0": {"csr"},
        "reset-mideleg": {"reset"},
        "misaligned-fault-tval": {"load", "store"},
        "reserved-bits-writable": {"csr"},
        "mstatus-uxl": {"csr"},
        "hstatus-wpri": {"csr"},
        "atp-stored-raw": {"csr"},
        "vsstatus-raw": {"csr", "reset"},
        "vstvec-reserved-mode": {"csr"},
        "vsip-ssip-only": {"csr"},
        "hcounteren-64-bit": {"csr"},
        "henvcfg-stce-writable": {"csr"},
        "vu-supervisor-illegal": {"csr", "xret", "sfence"},
        "vs-exception-cause-shifted": ILLEGAL_TRAPS | {"store", "amo", "sc"},
        "hlv-trap-tval": {"hlv", "hsv"},
        "vu-hfence-illegal": {"hfence"},
        "tsr-tvm-in-vs": {"xret", "sfence", "csr"},
        "vu-wfi-tw-virtual": {"wfi"},
        "vtvm-satp-ignored": {"csr"},
        "tvm-hgatp-ignored": {"csr"},
        "tinst-zero": {"csr"},
        "hlvx-needs-read": {"hlv"},
        "hlvx-reads-non-executable": {"hlv"},
        "implicit-access-load-fault": {"store", "amo", "sc", "hsv"},
        "amo-guest-page-fault-cause": {"amo", "sc"},
        "vsstatus-mxr-g-stage": {"load", "lr", "hlv"},
        "hs-mxr-ignored": {"load", "lr", "hlv"},
        "hlv-ignores-sum": {"hlv", "hsv"},
        "vs-stage-fault-as-access-fault": ACCESSES,
        "vsstatus-mxr-ignored": {"load", "lr", "hlv"},
        "mprv-guest-page-fault-cause": ACCESSES - {"hlv", "hsv"},
        "mret-to-m-enters-v": {"xret"},
        "envcfg-unimplemented-fields": {"csr"},
        "sv57-implemented": {"csr"},
        "fp-flags-leave-fs": {"float"},
    }.items()
}
# the rules that apply at a trap entry, an interrupt or a dump field, whatever the instruction
WHY_ANY = {
    "vstip-without-stce": "mip.VSTIP in any dump while STCE is clear (QEMU's vstimecmp latch)",
    "vstip-not-reevaluated": "mip.VSTIP in any dump (QEMU evaluates it only at writes)",
    "vs-trap-writes-gva": "any trap from V=1 into VS, an interrupt or a fetch fault included",
    "m-trap-gva": "any trap into M, an interrupt or a fetch fault included",
    "interrupt-lowest-code-first": "an interrupt, taken at whatever instruction comes next",
    "ad-update-read-only-page": "the implicit PTE access of any access, the fetch included",
    "gpa-top-bit-faults": "any access through the G-stage, the fetch included",
    "implicit-fetch-access-load-fault": "the fetch of any instruction",
    "trigger-breakpoint-tval": "an execute trigger on any instruction (or a load/store one)",
}
RULE_CLASSES.update(dict.fromkeys(WHY_ANY, ANY))


def instruction_class(bits: int | None, *, reset: bool = False) -> str:
    """The class of the instruction with these bits (``reset`` for the reset state)."""
    if reset:
        return "reset"
    instruction = decode(bits) if bits is not None else None
    if instruction is None:
        return "illegal"
    name = instruction.base_name
    if name in CLASS_OF:
        return CLASS_OF[name]
    if name.startswith("csr"):
        return "csr"
    if name.startswith("amo"):
        return "amo"
    if name.startswith(("lr.", "sc.")):
        return name[:2]
    if name.startswith(("hlv.", "hlvx.")):
        return "hlv"
    if name.startswith("hsv."):
        return "hsv"
    if name.startswith("f") and not name.startswith("fence"):
        return "float"  # F and D (fence and fence.i are in CLASS_OF)
    if name.startswith("b"):
        return "branch"
    return "alu"


def image_fetcher(image: bytes, base: int = BASE):
    """The bits at a pc of a campaign image: code is mapped at its physical address and at the
    upper-half alias only, so the low 32 bits of a pc are its physical address."""

    def fetch(pc: int) -> int | None:
        if pc >> 32 == UPPER >> 32:
            pc &= 0xFFFF_FFFF
        offset = pc - base
        if not 0 <= offset <= len(image) - 2:
            return None
        low = int.from_bytes(image[offset : offset + 2], "little")
        if low & 3 != 3:
            return low
        return int.from_bytes(image[offset : offset + 4], "little")

    return fetch


def violations(fired: Iterable[tuple[str, str]]) -> list[str]:
    """The (rule, class) firings outside the rules' budgets, as messages."""
    out = []
    for rule, klass in fired:
        allowed = RULE_CLASSES.get(rule)
        if allowed is None:
            out.append(f"{rule}: a rule with no budget in rule_budget.py")
        elif allowed is not ANY and klass not in allowed:
            out.append(f"{rule} fired on a {klass} instruction (allowed: {sorted(allowed)})")
    return out

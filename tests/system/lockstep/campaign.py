"""What both random campaigns share: running an image in lockstep with QEMU, counting distinct
programs, and keeping each deviation rule to the instruction classes it declares
(rule_budget.py)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter

from hypothesis import HealthCheck, settings
from randprog import elf_image
from rule_budget import image_fetcher, instruction_class, violations

from rvh.config import MachineConfig
from rvh.diff import DiffResult, QemuStream, Stepper, format_report, lockstep

SEED = os.environ.get("RVH_FUZZ_SEED")
REFERENCE_MEMORY = 256 << 20  # rvh diff's -m 256 (the DTB's place depends on it)


def campaign_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=SEED is None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


class CampaignStepper(Stepper):
    """rvh diff's stepper, reading the bits of code run at its upper-half alias: the campaign
    maps code only at its physical address and at ``pa | 0xffffffff00000000`` (the rules
    that look at the instruction need its bits there too)."""

    def fetch(self, pc: int) -> int | None:
        if pc >> 32 == 0xFFFF_FFFF:
            pc &= 0xFFFF_FFFF
        return super().fetch(pc)


def diff_image(
    image: bytes,
    hypervisor: bool,
    *,
    context: int = 12,
    tables_hook=None,
    max_instructions: int = 400_000,
) -> tuple[DiffResult, str]:
    """Run a campaign image on QEMU and in lockstep on rvh; the result and rvh diff's report."""
    from rvh.machine import Machine

    with tempfile.TemporaryDirectory(prefix="rvh-fuzz-") as tmp:
        path = os.path.join(tmp, "batch.elf")
        with open(path, "wb") as out:
            out.write(elf_image(image))
        extensions = "acimsu" + ("h" if hypervisor else "")
        machine = Machine(
            MachineConfig(memory=REFERENCE_MEMORY, harts=1, extensions=extensions),
            output=lambda data: None,
        )
        machine.load(path)
        if tables_hook is not None:
            tables_hook(machine.tables)
        with QemuStream(
            path, hypervisor=hypervisor, max_instructions=max_instructions, timeout=120
        ) as stream:
            stream.available(0)
            result = lockstep(CampaignStepper(machine, stream.fields), stream, context=context)
            result.reference_truncated = stream.truncated
        assert not result.reference_truncated, "a random batch did not finish on QEMU"
        return result, format_report(result)


def fired_rules(result: DiffResult, image: bytes) -> list[tuple[str, str]]:
    """(rule name, instruction class) for every deviation the run applied."""
    fetch = image_fetcher(image)
    return [
        (applied.name, instruction_class(fetch(applied.pc), reset=applied.index <= 0))
        for applied in result.deviations
    ]


def program_key(program: object) -> str:
    """A digest of a program (frozen dataclasses: their repr is their whole content)."""
    return hashlib.sha256(repr(program).encode()).hexdigest()


# every campaign and counter set of this session, for the machine-readable report that
# conftest.py writes when RVH_FUZZ_REPORT names a file (tools/fuzz's shards)
CAMPAIGNS: list[CampaignStats] = []
COUNTERS: dict[str, dict[str, int]] = {}


def counters(name: str, *names: str) -> dict[str, int]:
    """A named set of counters, all zero, reported with the campaigns."""
    return COUNTERS.setdefault(name, dict.fromkeys(names, 0))


class CampaignStats:
    """Programs (distinct ones), batches, instructions and rule firings over a campaign."""

    def __init__(self, name: str) -> None:
        self.name = name
        CAMPAIGNS.append(self)
        self.batches = 0
        self.programs = 0
        self.instructions = 0
        self.keys: set[str] = set()
        self.rules: Counter[tuple[str, str]] = Counter()
        self.broken: list[str] = []

    @property
    def distinct(self) -> int:
        return len(self.keys)

    def record(self, programs, result: DiffResult, image: bytes) -> list[str]:
        """Count a batch; returns the rule firings outside their budgets."""
        self.batches += 1
        self.programs += len(programs)
        self.instructions += result.instructions
        self.keys.update(program_key(p) for p in programs)
        fired = fired_rules(result, image)
        self.rules.update(fired)
        bad = violations(fired)
        self.broken += bad
        return bad

    def summary(self) -> dict[str, object]:
        """The tallies as JSON data: what tools/fuzz merges over its shards (the program
        digests themselves, so the distinct count of the union is exact)."""
        return {
            "name": self.name,
            "batches": self.batches,
            "programs": self.programs,
            "instructions": self.instructions,
            "digests": sorted(self.keys),
            "rules": [[rule, klass, count] for (rule, klass), count in sorted(self.rules.items())],
            "broken": list(self.broken),
        }

    def report(self) -> str:
        lines = [
            f"{self.name}: {self.programs} programs ({self.distinct} distinct) in "
            f"{self.batches} batches, {self.instructions} instructions compared",
            f"  {'deviation rule':<36}{'class':<10}{'fired':>8}",
        ]
        for (rule, klass), count in sorted(self.rules.items()):
            lines.append(f"  {rule:<36}{klass:<10}{count:>8}")
        if not self.rules:
            lines.append("  (no rule fired)")
        return "\n".join(lines)

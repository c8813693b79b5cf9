"""The CI campaign's mutation score (``tools/mutate``, docs/testing.md "Mutation score").

Each mutant of the tool's catalogue plants one bug in rvh through its data tables (an
instruction executed as another, a CSR mask off by a field, a cause delivered as another); the
CI share of the random-program campaign, replayed against its recorded QEMU references, must
catch at least 95% of them.  The tool is run as users run it, in a subprocess.  The references
are recorded with QEMU on first use (``build/campaign-refs``), so QEMU 7.2 is required.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rvh.diff import qemu_available

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "mutate.py"
REQUIRED_SCORE = 0.95


def mutate(*arguments: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _require_qemu() -> None:
    assert qemu_available(), "qemu-system-riscv64 (QEMU 7.2) is needed to record the references"


@pytest.mark.slow
@pytest.mark.qemu
def test_campaign_kills_the_catalogue():
    _require_qemu()
    run = mutate("--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    total = len(result["killed"]) + len(result["survived"])
    assert total >= 150, "the catalogue shrank"
    assert result["score"] == pytest.approx(len(result["killed"]) / total)
    assert result["score"] >= REQUIRED_SCORE, (
        f"mutation score {result['score']:.3f} < {REQUIRED_SCORE}: survived "
        + " ".join(result["survived"])
    )


@pytest.mark.slow
@pytest.mark.qemu
def test_mutants_from_the_command_line_are_reported_by_their_names():
    """A known-killable mutant (rare in the campaign: MULHSU differs from MULHU only for a
    negative rs1) is killed, the identity survives, a cause mutant is killed, and each is
    reported under the name it was given."""
    _require_qemu()
    run = mutate(
        "--json",
        "--mutant",
        "mulhsu=mulhu",
        "--mutant",
        "add=add",
        "--mutant",
        "cause:illegal_instruction=breakpoint",
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result == {
        "score": pytest.approx(2 / 3),
        "killed": ["mulhsu=mulhu", "cause:illegal_instruction=breakpoint"],
        "survived": ["add=add"],
    }


def _tool_module():
    """tools/mutate.py, imported (it is a script, not a package module)."""
    if "mutate_tool" not in sys.modules:
        spec = importlib.util.spec_from_file_location("mutate_tool", TOOL)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["mutate_tool"] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules["mutate_tool"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("addd=add", "unknown instruction 'addd'"),
        ("add", "expected A=B"),
        ("mscratch.write-FOO", "unknown field 'FOO'"),
        ("mstatus.write-bit3", "writes do not go through the table's write mask"),
        ("cause:nope=2", "unknown exception cause 'nope'"),
    ],
)
def test_a_bad_mutant_name_is_one_line_and_status_2(name, message, capsys):
    assert _tool_module().main(["--mutant", "add=sub", "--mutant", name]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err, err


def test_the_command_line_refuses_a_bad_mutant():
    run = mutate("--mutant", "sub=nosuch", timeout=120)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == "tools/mutate: unknown instruction 'nosuch'\n"


def test_the_catalogue_is_well_formed():
    """Every class of the brief is there, every name parses and changes something."""
    tool = _tool_module()
    mutants = tool.catalogue()
    classes = {group for group, _ in tool.CATALOGUE}
    for needed in ("M", "A (LR/SC, AMOs)", "C", "Zicsr", "system", "CSR masks", "trap causes"):
        assert needed in classes
    assert {m.kind for m in mutants} == {"instruction", "csr", "cause"}
    assert len(mutants) >= 150

"""The suite's own guard rails: an unlisted skip fails the run (tests/skip_policy.py), and a
missing or wrong reference QEMU fails with one line (tests/support.py, tests/conftest.py).

Each check runs pytest in a subprocess on a tiny test file, with the suite's conftest loaded,
and reads its exit status and report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import qemu_version_problem, require_guest, require_tool

TESTS = Path(__file__).resolve().parent
# the plugins the tiny runs do not need (pytest-trio imports hypothesis: seconds per run)
LEAN = ["-p", "no:cacheprovider", "-p", "no:trio", "-p", "no:hypothesispytest"]

TINY_TESTS = """
import pytest

def test_passes():
    assert True

def test_skips_for_a_missing_tool():
    pytest.skip("frobnicator not installed")

@pytest.mark.skipif(True, reason="no frobnicator either")
def test_skipif_marker():
    pass

def test_listed_skip():
    pytest.skip("cannot happen as root")

@pytest.mark.parametrize("n", [1, 2])
def test_listed_parametrized(n):
    pytest.skip("listed by its base id")

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

@pytest.mark.qemu
def test_needs_the_reference():
    pass
"""

INI = """[pytest]
markers =
    qemu: runs the reference QEMU
allowed_skips =
    test_tiny.py::test_listed_skip: root reads every file
    test_tiny.py::test_listed_parametrized: listed for both cases
"""


def run_pytest(
    directory: Path, *arguments: str, environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    env.update(environment or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", *LEAN, *arguments],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def fake_qemu(directory: Path, banner: str) -> Path:
    script = directory / "qemu-system-riscv64"
    script.write_text(f"#!/bin/sh\necho '{banner}'\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_tiny.py").write_text(TINY_TESTS)
    return tmp_path


def test_unlisted_skips_fail_and_every_skip_is_reported(tiny):
    qemu = fake_qemu(tiny, "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7)")
    run = run_pytest(tiny, "-q", environment={"RVH_QEMU": str(qemu)})
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    summary = out.splitlines()[-1]
    assert "2 passed, 3 skipped, 1 xfailed" in summary and "1 failed" in summary, summary
    assert "1 error" in summary  # the skipif marker is judged at set-up
    report = out[out.index("skip report") :]
    unlisted = "FAILED (unlisted skip) test_tiny.py::"
    assert unlisted + "test_skips_for_a_missing_tool: frobnicator not installed" in report
    assert unlisted + "test_skipif_marker: no frobnicator either" in report
    assert "allowed skip test_tiny.py::test_listed_skip: root reads every file" in report
    for case in ("1", "2"):
        assert f"allowed skip test_tiny.py::test_listed_parametrized[{case}]: listed" in report
    assert "3 allowed skip(s), 2 unlisted skip(s) counted as failures" in report
    # the failure itself says what to do; an expected failure is not a skip
    assert "not an allowed skip: frobnicator not installed (install what is missing" in out
    assert "test_expected_failure" not in report


def test_only_listed_skips_pass(tiny):
    qemu = fake_qemu(tiny, "QEMU emulator version 7.2.0")
    run = run_pytest(tiny, "-q", "-k", "listed or passes", environment={"RVH_QEMU": str(qemu)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 unlisted skip(s)" in run.stdout


def test_a_module_that_skips_as_a_whole_fails(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_module.py").write_text(
        "import pytest\npytest.skip('no toolchain', allow_module_level=True)\n"
    )
    run = run_pytest(tmp_path, "-q")
    assert run.returncode != 0
    assert "FAILED (unlisted skip) test_module.py: no toolchain" in run.stdout


def test_an_allowed_skip_needs_a_reason(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nallowed_skips =\n    test_x.py::test_y\n")
    (tmp_path / "test_x.py").write_text("def test_y():\n    pass\n")
    run = run_pytest(tmp_path, "-q")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "allowed_skips: 'test_x.py::test_y' has no reason" in run.stderr


def test_a_qemu_test_without_qemu_fails_with_what_to_install(tiny):
    run = run_pytest(
        tiny, "-q", "-k", "reference", environment={"RVH_QEMU": str(tiny / "no-such-qemu")}
    )
    assert run.returncode == 1
    missing = f"{tiny / 'no-such-qemu'} not found: install Debian 12's qemu-system-misc (QEMU 7.2)"
    assert missing in run.stdout
    assert "skip report" not in run.stdout  # a failure, not a skip


def test_a_qemu_other_than_7_2_is_refused(tiny):
    qemu = fake_qemu(tiny, "QEMU emulator version 8.1.3 (v8.1.3)")
    run = run_pytest(tiny, "-q", "-k", "reference", environment={"RVH_QEMU": str(qemu)})
    assert run.returncode == 1
    assert f"{qemu} is QEMU 8.1, the deviation rules describe QEMU 7.2" in run.stdout


@pytest.mark.parametrize(
    ("banner", "problem"),
    [
        ("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)", None),
        ("QEMU emulator version 7.1.0", "is QEMU 7.1, the deviation rules describe QEMU 7.2"),
        ("QEMU emulator version 9.2.0", "is QEMU 9.2, the deviation rules describe QEMU 7.2"),
        ("something else entirely", "--version printed no version"),
    ],
)
def test_qemu_version_check(tmp_path, banner, problem):
    found = qemu_version_problem(str(fake_qemu(tmp_path, banner)))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "\n" not in found


def test_the_installed_qemu_is_the_reference():
    assert qemu_version_problem(os.environ.get("RVH_QEMU", "qemu-system-riscv64")) is None


def test_a_missing_tool_fails_with_one_line_saying_what_to_install(tmp_path):
    with pytest.raises(pytest.fail.Exception) as failed:
        require_tool("no-such-assembler", "the frobnicator package")
    assert str(failed.value) == (
        "no-such-assembler not found: install the frobnicator package (run make setup)"
    )
    with pytest.raises(pytest.fail.Exception) as failed:
        require_guest(tmp_path / "missing.elf")
    assert str(failed.value) == f"{tmp_path / 'missing.elf'} not built: run make guests"

"""The suite's skip policy: a test that skips is a failure unless it is listed.

A skip for a missing tool, file or build proves nothing and must not let ``make test`` pass
(issue 20: without the toolchain 991 tests skipped and pytest exited 0).  The few tests that
cannot run on some machines for a reason no setup can change are listed, with that reason, in
one place: the ``allowed_skips`` option in ``pyproject.toml`` (``[tool.pytest.ini_options]``),
one line each, ``NODE_ID: reason``.  A parametrized test is listed by its id without the
``[...]`` part.  Every skip that happens is printed at the end, listed or not; an unlisted skip
is reported as a failure, so the run exits non-zero.

Loaded by ``tests/conftest.py``; another pytest run can load it with ``-p skip_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ALLOWED_SKIPS_OPTION = "allowed_skips"


@dataclass(frozen=True)
class Skip:
    node_id: str
    reason: str
    listed_reason: str | None  # the reason given in allowed_skips, None when not listed


_skips: list[Skip] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        ALLOWED_SKIPS_OPTION,
        "tests allowed to skip, one 'NODE_ID: reason' a line (every other skip fails)",
        type="linelist",
        default=[],
    )


_listed: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    _listed.update(allowed_skips(config))  # a malformed list is a usage error before anything


def allowed_skips(config: pytest.Config) -> dict[str, str]:
    """``allowed_skips`` as {node id: reason}; a line without a reason is a usage error."""
    table: dict[str, str] = {}
    for line in config.getini(ALLOWED_SKIPS_OPTION):
        node_id, separator, reason = line.partition(": ")
        if not separator or not reason.strip():
            raise pytest.UsageError(f"allowed_skips: {line!r} has no reason ('NODE_ID: reason')")
        table[node_id.strip()] = reason.strip()
    return table


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # a skip's longrepr is (path, line, "Skipped: reason")
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def _judge(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    node_id = report.nodeid
    listed = allowed_skips(config).get(node_id.split("[", 1)[0])
    reason = _reason(report)
    _skips.append(Skip(node_id, reason, listed))
    if listed is None:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped, and not an allowed skip: {reason} "
            "(install what is missing: make setup; build the guests: make guests)"
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail"):
        _judge(item.config, report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    # a module that skips as a whole (pytest.skip(allow_module_level=True), importorskip)
    report = yield
    if report.skipped:
        _judge(collector.config, report)
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # under pytest-xdist (make test uses both cores) the workers judge each skip as above; the
    # controller hears their reports (they carry the worker as ``node``) and keeps the list
    # the skip report prints
    if getattr(report, "node", None) is None or report.when not in ("setup", "call"):
        return
    if report.skipped and not hasattr(report, "wasxfail"):
        listed = _listed.get(report.nodeid.split("[", 1)[0])
        _skips.append(Skip(report.nodeid, _reason(report), listed))
    elif report.failed and str(report.longrepr).startswith("skipped, and not an allowed skip"):
        _skips.append(Skip(report.nodeid, str(report.longrepr), None))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _skips:
        return
    write = terminalreporter.write_line
    terminalreporter.section("skip report")
    for skip in _skips:
        if skip.listed_reason is None:
            write(f"FAILED (unlisted skip) {skip.node_id}: {skip.reason}")
        else:
            write(f"allowed skip {skip.node_id}: {skip.listed_reason}")
    unlisted = sum(skip.listed_reason is None for skip in _skips)
    allowed = len(_skips) - unlisted
    write(f"{allowed} allowed skip(s), {unlisted} unlisted skip(s) counted as failures")

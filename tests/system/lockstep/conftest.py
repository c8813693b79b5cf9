"""The random campaigns' machine-readable report, for tools/fuzz's shards
(rvh/diff/campaign_runner.py).

When ``RVH_FUZZ_REPORT`` names a file, the session writes it at its end as JSON: each
campaign's tallies (``CampaignStats.summary``: batches, programs, the program digests, rule
firings by class, firings outside their budget), the counters (``campaign.counters``), every
test's outcome, and for each failed test the text pytest prints for it (the assertion's
message, which is rvh diff's divergence report, with hypothesis's falsifying example and its
``@reproduce_failure`` line).  Without the variable nothing changes.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

REPORT = os.environ.get("RVH_FUZZ_REPORT")
_outcomes: dict[str, str] = {}
_failures: list[dict[str, str]] = []


def _record(nodeid: str, failed: bool, outcome: str, text: str) -> None:
    if failed:
        _outcomes[nodeid] = "failed"
        _failures.append({"test": nodeid, "report": text})
    else:
        _outcomes.setdefault(nodeid, outcome)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if REPORT is not None and (report.failed or report.when == "call" or report.skipped):
        _record(report.nodeid, report.failed, report.outcome, report.longreprtext)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if REPORT is not None and report.failed:
        _record(report.nodeid or "(collection)", True, "failed", report.longreprtext)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REPORT is None:
        return
    campaign = sys.modules.get("campaign")  # imported by the campaign tests, if any ran
    data = {
        "campaigns": [
            stats.summary() for stats in getattr(campaign, "CAMPAIGNS", ()) if stats.batches
        ],
        "counters": dict(getattr(campaign, "COUNTERS", {})),
        "outcomes": _outcomes,
        "failures": _failures,
        "exitstatus": int(exitstatus),
    }
    with open(REPORT, "w") as out:
        json.dump(data, out)

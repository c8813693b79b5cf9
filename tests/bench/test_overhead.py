"""rvh bench overhead: the runner's rows, the orderings that must hold between modes, its
determinism, the merge, the CLI's JSON and plot, and a run on a Dask LocalCluster."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support import ROOT

from rvh.bench.overhead import (
    Row,
    RunKey,
    RunResult,
    merge,
    parse_modes,
    run_key,
    run_matrix,
    summary_table,
)
from rvh.errors import ConfigError

JSON_KEYS = {"class", "bench", "mode", "value", "unit", "overhead_pct", "exits"}
PRIV_BENCHES = [
    "syscall", "csr", "mmio", "call", "illegal", "sbi", "timer", "pagefault", "ptemod", "ctxswitch"
]  # fmt: skip


@pytest.fixture(scope="module")
def priv_rows() -> dict[str, dict[str, Row]]:
    rows = merge([run_key(RunKey("priv", "native")), run_key(RunKey("priv", "hw"))])
    by_mode: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_mode.setdefault(row.mode, {})[row.bench] = row
    return by_mode


@pytest.mark.slow  # runs guests
def test_priv_benchmarks_all_measured(priv_rows):
    assert list(priv_rows["native"]) == PRIV_BENCHES
    assert list(priv_rows["hw"]) == PRIV_BENCHES
    for row in priv_rows["native"].values():
        assert row.status == "ok" and row.value and row.value > 0 and row.exits is None
    assert priv_rows["native"]["call"].value == pytest.approx(4.0, abs=0.1)


@pytest.mark.slow  # runs guests
def test_hw_delegated_operations_cost_what_native_does(priv_rows):
    # syscalls, CSR writes, illegal instructions, timer interrupts, page faults, PTE updates
    # and satp switches never leave the VM in hw mode: the same instructions, no exit
    for bench in ("syscall", "csr", "call", "illegal", "timer", "pagefault", "ptemod", "ctxswitch"):
        native, hw = priv_rows["native"][bench], priv_rows["hw"][bench]
        assert hw.value == native.value, bench
        assert hw.overhead_pct == 0.0 and hw.exits == 0.0, bench


@pytest.mark.slow  # runs guests
def test_hw_exits_cost_hypervisor_instructions(priv_rows):
    for bench in ("mmio", "sbi"):
        hw = priv_rows["hw"][bench]
        assert hw.exits == 1.0
        assert hw.value > priv_rows["native"][bench].value + 50
        assert hw.overhead_pct > 100


@pytest.mark.slow  # runs guests
def test_cpu_bound_hw_overhead_at_most_5_percent():
    rows = merge([run_key(RunKey("cpu", "native")), run_key(RunKey("cpu", "hw"))])
    (hw,) = [row for row in rows if row.mode == "hw"]
    assert hw.bench == "intmem" and hw.value > 1_000_000
    assert hw.overhead_pct is not None and hw.overhead_pct <= 5.0


@pytest.mark.slow  # runs guests
def test_counts_twice_identical():
    first = run_key(RunKey("ram", "hw")).rows
    second = run_key(RunKey("ram", "hw")).rows
    assert [r.bench for r in first] == ["touch", "fork", "memcpy"]
    assert [(r.value, r.exits) for r in first] == [(r.value, r.exits) for r in second]


@pytest.mark.slow  # runs guests
def test_pv_build_in_pv_mode_trades_exits_for_calls():
    # pv mode runs guests/build/bench/overhead-pv: its kernel's CSR accesses are stores in the
    # shared page and its trap returns one call, so what trap mode pays in exits it does not
    rows = merge([run_key(RunKey("priv", "trap")), run_key(RunKey("priv", "pv"))])
    by = {(r.mode, r.bench): r for r in rows}
    assert all(r.status == "ok" for r in rows)
    for bench in ("syscall", "csr", "illegal", "timer", "pagefault"):
        trap, pv = by[("trap", bench)], by[("pv", bench)]
        assert pv.exits < trap.exits and pv.value < trap.value, bench
    assert by[("pv", "syscall")].exits == pytest.approx(2.0, abs=0.01)
    assert by[("pv", "syscall")].value < 700
    assert by[("pv", "csr")].exits < 0.05  # a store in the page: no exit
    assert by[("pv", "call")].value == by[("trap", "call")].value  # nothing privileged


def test_refused_modes_are_rows_not_crashes():
    for mode in ("trap", "pv"):
        rows = run_key(RunKey("cpu", mode)).rows
        if rows[0].status == "unsupported":
            # what the hypervisor says today; the row turns "ok" once the mode boots
            assert rows[0].value is None and "virt=" in rows[0].note
        else:
            assert rows[0].status == "ok" and rows[0].value > 0


def test_io_classes_are_na_in_vm_modes():
    rows = run_key(RunKey("disk", "hw")).rows
    assert [r.bench for r in rows] == ["read-4k", "write-4k", "read-64k", "write-64k"]
    assert all(r.status == "n/a" and r.value is None for r in rows)


def _row(klass, bench, mode, value, host_ns=None):
    return Row(klass, bench, mode, value, "instructions/op", host_ns=host_ns)


def test_merge_orders_by_run_key_and_computes_overhead():
    results = [
        RunResult(RunKey("priv", "hw"), [_row("priv", "sbi", "hw", 225.0)]),
        RunResult(RunKey("cpu", "native"), [_row("cpu", "intmem", "native", 100.0)]),
        RunResult(RunKey("priv", "native"), [_row("priv", "sbi", "native", 18.0)]),
        RunResult(RunKey("cpu", "hw"), [_row("cpu", "intmem", "hw", 101.0)]),
    ]
    for order in (results, results[::-1]):
        rows = merge(order)
        assert [(r.klass, r.mode) for r in rows] == [
            ("cpu", "native"), ("cpu", "hw"), ("priv", "native"), ("priv", "hw")
        ]  # fmt: skip
        assert [r.overhead_pct for r in rows] == [0.0, 1.0, 0.0, 1150.0]


def test_merge_of_repeats_takes_median_time_and_checks_counts():
    key = RunKey("cpu", "native")
    runs = [
        RunResult(RunKey("cpu", "native", i), [_row("cpu", "intmem", "native", 7.0, t)])
        for i, t in enumerate((30.0, 10.0, 20.0))
    ]
    (row,) = merge(runs)
    assert row.status == "ok" and row.host_ns == 20.0
    runs.append(RunResult(RunKey(key.klass, key.mode, 3), [_row("cpu", "intmem", "native", 8.0)]))
    (row,) = merge(runs)
    assert row.status == "failed" and "disagree" in row.note
    # the I/O classes' devices keep host time: their counts vary a little, the median is kept
    net = [
        RunResult(RunKey("net", "native", i), [_row("net", "net-64", "native", value)])
        for i, value in enumerate((501.2, 501.0, 501.1))
    ]
    (row,) = merge(net)
    assert row.status == "ok" and row.value == 501.1


def test_summary_table_has_the_seed_ranges():
    rows = merge([RunResult(RunKey("ram", "native"), [_row("ram", "touch", "native", 13.0)])])
    table = summary_table(rows, ["native", "hw"])
    assert table[0] == ["class", "native", "hw", "seed"]
    assert table[1] == ["ram", "+0.0%", "-", "25% to 75%"]


def test_parse_modes():
    assert parse_modes("hw,trap") == ["native", "hw", "trap"]
    assert parse_modes("native,hw,hw") == ["native", "hw"]
    with pytest.raises(ConfigError, match="--modes: kvm"):
        parse_modes("kvm")


def test_bad_modes_is_one_line_and_status_2():
    result = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "bench", "overhead", "--modes", "kvm"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--modes: kvm" in result.stderr


@pytest.mark.slow  # runs guests
def test_dask_local_cluster_matches_serial():
    keys = [RunKey("priv", "native"), RunKey("priv", "hw")]
    on_dask = run_matrix(keys, dask="")
    serial = merge([run_key(key) for key in keys])
    assert [(r.klass, r.bench, r.mode, r.value, r.exits) for r in on_dask] == [
        (r.klass, r.bench, r.mode, r.value, r.exits) for r in serial
    ]


@pytest.mark.slow
def test_cli_quick_writes_json_and_plot(tmp_path):
    json_path, png_path = tmp_path / "overhead.json", tmp_path / "overhead.png"
    result = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "bench", "overhead", "--quick", "--modes", "hw,trap",
         "--json", str(json_path), "--plot", str(png_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "class" in result.stdout and "25% to 75%" in result.stdout
    rows = json.loads(json_path.read_text())
    assert all(JSON_KEYS <= set(row) for row in rows)
    classes = {row["class"] for row in rows}
    assert classes == {"cpu", "priv", "ram", "disk", "net"}
    assert {row["mode"] for row in rows} == {"native", "hw", "trap"}
    native_io = [r for r in rows if r["class"] in ("disk", "net") and r["mode"] == "native"]
    assert native_io and all(r["value"] > 0 for r in native_io)
    hw_cpu = [r for r in rows if r["class"] == "cpu" and r["mode"] == "hw"]
    assert hw_cpu[0]["overhead_pct"] <= 5.0
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""rvh bench overhead: the runner's rows, the orderings that must hold between modes, its
determinism, the merge, the CLI's JSON and plot, and a run on a Dask LocalCluster."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from support import ROOT, run_sbi_elf, virtio_guest, virtio_image

from rvh.bench.overhead import (
    IO_PATHS,
    QUICK_IO,
    Row,
    RunKey,
    RunResult,
    _IoStreams,
    merge,
    parse_modes,
    plan,
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


DISK_BENCHES = ["read-4k", "write-4k", "read-64k", "write-64k"]


def test_plan_has_one_io_run_per_path_of_each_mode():
    keys = plan(["native", "hw", "trap", "pv"], classes=("cpu", "disk"), quick=True)
    assert [(k.klass, k.mode, k.path) for k in keys] == [
        ("cpu", "native", ""), ("cpu", "hw", ""), ("cpu", "trap", ""), ("cpu", "pv", ""),
        ("disk", "native", "virtio"), ("disk", "native", "pv"),
        ("disk", "hw", "emulated"), ("disk", "hw", "pv"), ("disk", "hw", "passthrough"),
        ("disk", "trap", "emulated"), ("disk", "trap", "pv"),
        ("disk", "pv", "emulated"), ("disk", "pv", "pv"),
    ]  # fmt: skip
    assert all(key.quick for key in keys)
    assert "passthrough" not in IO_PATHS["trap"] + IO_PATHS["pv"]  # no G-stage for the IOMMU


@pytest.fixture(scope="module")
def disk_rows() -> dict[tuple[str, str], dict[str, Row]]:
    """disk natively (virtio, pv) and in an hw VM over each path, --quick's size."""
    keys = [
        RunKey("disk", mode, 0, path, True) for mode in ("native", "hw") for path in IO_PATHS[mode]
    ]
    by: dict[tuple[str, str], dict[str, Row]] = {}
    for row in merge([run_key(key) for key in keys]):
        by.setdefault((row.mode, row.path), {})[row.bench] = row
    return by


@pytest.mark.slow  # runs guests
def test_disk_rows_in_an_hw_vm_over_each_path(disk_rows):
    assert set(disk_rows) == {
        ("native", "virtio"), ("native", "pv"), ("hw", "emulated"), ("hw", "pv"),
        ("hw", "passthrough"),
    }  # fmt: skip
    for (mode, _), rows in disk_rows.items():
        assert list(rows) == DISK_BENCHES
        for row in rows.values():
            assert row.status == "ok" and row.value and row.value > 0
            assert row.unit == "instructions/request" and row.host_ns and row.host_ns > 0
            if mode == "native":
                assert row.exits is None and row.exits_by_cause is None
            else:
                # the causes add up to the exits (ecall counted without console output)
                assert row.exits is not None and row.exits_by_cause
                assert sum(row.exits_by_cause.values()) == pytest.approx(row.exits, abs=0.01)
                assert row.overhead_pct is not None


@pytest.mark.slow  # runs guests
def test_disk_paths_ordered_by_their_exits(disk_rows):
    emulated, pv, passthrough = (disk_rows[("hw", p)] for p in ("emulated", "pv", "passthrough"))
    for bench in DISK_BENCHES:
        # a pv batch is one NOTIFY call instead of register writes the hypervisor decodes;
        # a passthrough device's registers are the VM's own: only its interrupts leave
        assert passthrough[bench].exits <= pv[bench].exits < emulated[bench].exits, bench
        assert "mmio" in emulated[bench].exits_by_cause
        assert pv[bench].exits_by_cause.get("sbi", 0) > 0, bench  # the NOTIFY calls
        # the emulated path decodes register accesses and copies every byte through a bounce
        # buffer in the hypervisor (doublewords at a time): several times pv's cost, and more
        # than passthrough's (about 4x at 4 KiB, more for larger requests)
        assert emulated[bench].value > 2 * pv[bench].value, bench
        assert emulated[bench].value > 2 * passthrough[bench].value, bench
    # the 4 KiB requests of a passthrough disk cost what they cost natively, give or take its
    # interrupts' exits
    for bench in ("read-4k", "write-4k"):
        assert passthrough[bench].overhead_pct < 25, bench


@pytest.mark.slow  # runs guests
def test_net_between_two_vms_over_each_path():
    keys = [
        RunKey("net", mode, 0, path, True) for mode in ("native", "trap") for path in IO_PATHS[mode]
    ]
    rows = merge([run_key(key) for key in keys])
    by = {(r.mode, r.path, r.bench): r for r in rows}
    assert sorted({(r.mode, r.path) for r in rows}) == [
        ("native", "pv"), ("native", "virtio"), ("trap", "emulated"), ("trap", "pv")
    ]  # fmt: skip
    for bench in ("net-64", "net-1500"):
        for key in (("native", "virtio"), ("native", "pv"), ("trap", "emulated"), ("trap", "pv")):
            row = by[(*key, bench)]
            assert row.status == "ok" and row.value > 0 and row.unit == "instructions/frame"
        emulated, pv = by[("trap", "emulated", bench)], by[("trap", "pv", bench)]
        # the emulated NICs' frames are copied by the hypervisor, the pv ones by the platform
        assert emulated.value > pv.value
        assert emulated.overhead_pct > pv.overhead_pct > 0
        assert set(emulated.exits_by_cause) >= {"mmio", "interrupts"}
    # a 1500-byte frame costs the emulated path its copy: more than a 64-byte one
    assert by[("trap", "emulated", "net-1500")].value > by[("trap", "emulated", "net-64")].value
    # and from one VM (natively one guest) to a native guest in another rvh process over UDP:
    # the sender's instructions per frame sent, and its exits
    for bench in ("to-native-64", "to-native-1500"):
        native = by[("native", "virtio", bench)]
        emulated, pv = by[("trap", "emulated", bench)], by[("trap", "pv", bench)]
        assert native.status == emulated.status == pv.status == "ok", (native.note, emulated.note)
        assert native.unit == "instructions/frame sent" and native.exits is None
        assert emulated.value > pv.value > 0 and emulated.exits > 0
        # half the work of the two-VM run: the sender's side only
        assert emulated.value < by[("trap", "emulated", bench.replace("to-native", "net"))].value


def test_io_streams_split_the_vms_console_chunks():
    # the multi-VM console names each chunk's VM; a chunk may end mid-line (a full line
    # buffer) and a prefix may come in two writes
    streams = _IoStreams(RunKey("net", "native", 0, "virtio", True), lambda: [])

    class Counting:
        instructions = 0

    streams.machine = Counting()
    for data in (
        b"[vm1] phase: net-64\n",
        b"[vm0] phase: net-64\n",
        b"[vm0] net-64: 10 frames of 64 bytes sent, 5 ticks\n[vm1] net-64: 10 frames of 64 ",
        b"bytes received (10 sent, 0 lost), 7 ticks, out of orde[v",
        b"m1] r 0\n[vm0] phase: net-1500\n[vm1] phase: net-1500\n",
    ):
        Counting.instructions += 100
        streams.feed(data)
    assert list(streams.phase_starts) == ["net-64", "net-1500"]
    assert streams.phase_starts["net-64"].instructions == 200  # vm0's, the later one
    work, at = streams.reports["net-64"]
    assert work == 10 and at.instructions == 300  # the receiver's line, from its first byte
    assert streams.lines[1] == b"" and streams.lines[0] == b""


def blkbench_with(tmp_path, bootargs: str) -> str:
    """blkbench's output on a fresh 2 MiB image with ``bootargs``; it must pass."""
    image = virtio_image(tmp_path / "bench.img", "2M", 2)
    result, output, _ = run_sbi_elf(
        virtio_guest("blkbench"), drives=[f"file={image},format=raw"], bootargs=bootargs
    )
    assert result.status == 0, output[-2000:]
    return output


@pytest.mark.slow  # runs guests
def test_benchmark_guests_sized_by_boot_arguments(tmp_path):
    output = blkbench_with(tmp_path, "console=x region=1M passes=2 region2=7")
    assert "region 1024 KiB x 2 passes" in output
    assert "read-4k: 2048 KiB in 512 requests of 4 KiB" in output
    assert "write-64k: 2048 KiB in 32 requests of 64 KiB" in output
    # a malformed value is the default (4 passes), a missing one too (32 MiB, capped by the disk)
    assert "region 2048 KiB x 4 passes" in blkbench_with(tmp_path, "passes=2x")
    # passes64 gives the 64 KiB phases their own count (rvh bench virtio: 16, to time them)
    output = blkbench_with(tmp_path, "region=1M passes=1 passes64=3")
    assert "write-4k: 1024 KiB in 256 requests of 4 KiB" in output
    assert "read-64k: 3072 KiB in 48 requests of 64 KiB" in output
    assert "write-64k: 3072 KiB in 48 requests of 64 KiB" in output
    macs = [f"hub,id=h0,mac=52:54:00:12:34:0{i}" for i in (1, 2)]
    result, output, _ = run_sbi_elf(
        virtio_guest("netbench"), netdevs=macs, bootargs="frames64=0x100 frames1500=3"
    )
    assert result.status == 0, output[-2000:]
    assert "net-64: 256 frames of 64 bytes received (256 sent, 0 lost)" in output
    assert "net-1500: 3 frames of 1500 bytes received" in output
    assert QUICK_IO.bootargs("net") == "frames64=4000 frames1500=2000"


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


def test_a_scheduler_that_never_answers_is_one_line_and_status_2():
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, "-m", "rvh.cli", "bench", "overhead", "--quick", "--dask", address],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "cannot reach the scheduler" in result.stderr and "no handshake" in result.stderr


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
    assert {r["path"] for r in native_io} == {"virtio", "pv"}
    # disk and net in each VM mode, one row per benchmark and I/O path, every one measured
    io = {
        (r["class"], r["mode"], r["path"], r["bench"]): r
        for r in rows
        if r["class"] in ("disk", "net")
    }
    assert {(c, m, p) for c, m, p, _ in io} == {
        (klass, mode, path)
        for klass in ("disk", "net")
        for mode in ("native", "hw", "trap")
        for path in IO_PATHS[mode]
    }
    assert all(r["status"] == "ok" and r["value"] > 0 for r in io.values())
    for (klass, mode, path, bench), row in io.items():
        if mode == "native":
            continue
        assert row["exits"] is not None and row["overhead_pct"] is not None
        # fewer exits on the pv path than the emulated one for the disk, and the fewest
        # through passthrough for both (only the device's interrupts leave an hw VM)
        emulated = io[(klass, mode, "emulated", bench)]
        if klass == "disk" and path == "pv":
            assert row["exits"] < emulated["exits"], (mode, bench)
        if path == "passthrough":
            assert (
                row["exits"] < emulated["exits"]
                and row["exits"] <= io[(klass, mode, "pv", bench)]["exits"]
            )
        if path != "emulated":
            assert row["value"] < emulated["value"], (klass, mode, path, bench)
    assert "disk (passthrough)" in result.stdout and "up to 10%" in result.stdout
    hw_cpu = [r for r in rows if r["class"] == "cpu" and r["mode"] == "hw"]
    assert hw_cpu[0]["overhead_pct"] <= 5.0
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

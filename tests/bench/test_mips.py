"""rvh bench mips in its quick form runs end to end (a smoke test: speed targets are measured by
the benchmark itself, never asserted in unit tests)."""

from support import GUESTS, require_guest

from rvh.bench.mips import bench_mips


def test_bench_mips_quick(capsys):
    require_guest(GUESTS / "bench" / "intmem.elf")
    assert bench_mips(quick=True, qemu=False) == 0
    out = capsys.readouterr().out
    for workload in ("intmem", "recursion", "bytes"):
        assert workload in out
    assert "MIPS" in out


def test_phase_cost_is_never_negative_zero():
    from rvh.bench.phases import cost

    assert cost(100.0, 100.0) == "+0.0%"
    assert cost(100.04, 100.0) == "+0.0%"  # -0.04% rounds to nothing, not to "-0.0%"
    assert cost(50.0, 100.0) == "+50.0%"
    assert cost(110.0, 100.0) == "-10.0%"

"""rvh bench linux --vm: the Linux guest natively, as an hw VM and as a trap VM, in one table."""

import re

import pytest

from rvh.bench.linux import bench_linux_vm


def _count(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.slow
def test_linux_boots_natively_and_as_hw_and_trap_vms_in_one_table(capsys):
    assert bench_linux_vm(repeat=1) == 0
    out = capsys.readouterr().out
    rows = {}
    for name in ("native", "hw", "trap"):
        # run, to /init, s, to power-off, s, MIPS, HS share, exits
        pattern = rf"^{name} +([\d,]+) +[\d.]+ +([\d,]+) +[\d.]+ +[\d.]+ +(\S+) +(\S+)$"
        row = re.search(pattern, out, re.M)
        assert row is not None, out
        rows[name] = row.groups()
    native_init, hw_init, trap_init = (_count(rows[n][0]) for n in ("native", "hw", "trap"))
    # the same kernel, on a board a little different (the VM's memory size and devices), so
    # an hw VM retires about what a native boot does (1,117 M native, 1,165 M hw to /init,
    # hypervisor included; 1,992 M and 1,996 M to power-off): its exits are the console and
    # the SBI; trap mode retires far more.  (Every count is the same run to run: the bench
    # fixes the RTC's date, which Linux reads at boot.)
    assert abs(hw_init - native_init) < native_init * 0.1
    assert max(native_init, hw_init) * 1.1 < trap_init
    assert rows["native"][2:] == ("-", "-")
    # the hypervisor's share of what the VM's run retired (0.6% and 16.3%)
    hw_share, trap_share = (float(rows[n][2].rstrip("%")) for n in ("hw", "trap"))
    assert 0 < hw_share < 2.0 and trap_share > 5 * hw_share
    hw_exits, trap_exits = _count(rows["hw"][3]), _count(rows["trap"][3])
    assert 0 < hw_exits < trap_exits
    assert re.search(r"^hw VM exits: ecall \d+, mmio [\d,]+", out, re.M)
    trap = re.search(r"^trap VM exits: (.*)$", out, re.M)
    assert trap is not None
    for counter in ("csr", "sret", "sfence", "shadow_fill", "forwarded"):
        assert re.search(rf"\b{counter} [1-9][\d,]*", trap.group(1)), counter
    assert re.search(r"^trap VM exits by scause: 2: [\d,]+", out, re.M)

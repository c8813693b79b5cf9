"""The QEMU-style ``--cpu`` spelling (rvh/config.py: parse_cpu)."""

import pytest

from rvh.config import parse_cpu
from rvh.errors import ConfigError


@pytest.mark.parametrize(
    "text, extensions",
    [
        ("rv64", "acdfhimsu"),
        ("rv64,h=off", "acdfimsu"),
        ("rv64,f=off,d=off", "achimsu"),
        ("rv64,d=false", "acfhimsu"),
        ("rv64,h=false,d=off,f=off", "acimsu"),
        ("rv64,f=off,d=off,f=on", "acfhimsu"),
    ],
)
def test_cpu_options(text, extensions):
    assert parse_cpu(text) == extensions


@pytest.mark.parametrize(
    "text, message",
    [
        ("rv64,f=off", "d=on needs f=on"),
        ("rv64,v=on", "unknown cpu option"),
        ("rv32", "unknown cpu"),
        ("rv64,f=maybe", "unknown cpu option"),
    ],
)
def test_bad_cpu_options(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_cpu(text)


def test_io_timing_is_host_or_virtual():
    from rvh.config import MachineConfig

    MachineConfig(io_timing="virtual").validate()
    with pytest.raises(ConfigError, match="--io-timing sometimes: host or virtual"):
        MachineConfig(io_timing="sometimes").validate()

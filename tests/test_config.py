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


def test_pv_devices_take_no_virtio_slot_and_are_limited_apart():
    from rvh.config import PVIO_MAX_DEVICES, VIRTIO_SLOTS, MachineConfig

    virtio = [f"file=d{i}.img" for i in range(VIRTIO_SLOTS)]
    pv = [f"file=p{i}.img,if=pv" for i in range(PVIO_MAX_DEVICES)]
    MachineConfig(drives=virtio + pv).validate()  # 8 virtio slots and 8 pv devices: fine
    with pytest.raises(ConfigError, match="at most 8 pv devices"):
        MachineConfig(drives=pv, netdevs=["hub,id=h0,if=pv"]).validate()
    with pytest.raises(ConfigError, match="at most 8 virtio devices"):
        MachineConfig(drives=virtio, netdevs=["hub,id=h0"]).validate()

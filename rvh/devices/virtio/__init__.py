"""virtio devices over the virtio-mmio transport (virtio 1.2): the transport (``mmio``), split
virtqueues (``queue``), virtio-blk (``blk``), virtio-net (``net``) and its backends (``netdev``),
and the QEMU-style option strings (``options``).  See docs/virtio.md for how they fit the
machine."""

from rvh.devices.virtio.blk import BlockImage, VirtioBlk
from rvh.devices.virtio.mmio import SLOT_SIZE, VirtioMmioDevice, VirtioMmioEmpty
from rvh.devices.virtio.net import VirtioNet, default_mac
from rvh.devices.virtio.netdev import (
    Hub,
    HubPort,
    NetBackend,
    PcapTap,
    PcapWriter,
    UdpSocketBackend,
    open_netdev,
)
from rvh.devices.virtio.notifier import Notifier
from rvh.devices.virtio.options import DriveOptions, NetdevOptions, parse_drive, parse_netdev

__all__ = [
    "SLOT_SIZE",
    "BlockImage",
    "DriveOptions",
    "Hub",
    "HubPort",
    "NetBackend",
    "NetdevOptions",
    "Notifier",
    "PcapTap",
    "PcapWriter",
    "UdpSocketBackend",
    "VirtioBlk",
    "VirtioMmioDevice",
    "VirtioMmioEmpty",
    "VirtioNet",
    "default_mac",
    "open_netdev",
    "parse_drive",
    "parse_netdev",
]

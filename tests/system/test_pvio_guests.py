"""The pv guests on rvh's built-in SBI: block and network I/O through the platform I/O
extension (RVH_PVIO) give the results the virtio guests get, with one NOTIFY per batch."""

import pytest
from support import run_sbi_elf, virtio_guest, virtio_image

from rvh.isa.sbi import Extension

SECTOR = 512


def written(sector: int) -> bytes:
    """What guests/virtio/pvblk.c writes to disk0's sector ``sector`` (written_fill)."""
    data = bytearray((sector * 3 + j * 5 + 0x5A) & 0xFF for j in range(SECTOR))
    data[0:5] = b"pvblk"
    data[5] = sector & 0xFF
    data[6] = (sector >> 8) & 0xFF
    return bytes(data)


@pytest.mark.slow
def test_pvblk_guest(tmp_path):
    disk0 = virtio_image(tmp_path / "disk0.img", "8M", 0)
    disk1 = virtio_image(tmp_path / "disk1.img", "1M", 1)
    before0, before1 = disk0.read_bytes(), disk1.read_bytes()
    result, output, machine = run_sbi_elf(
        virtio_guest("pvblk"),
        drives=[f"file={disk0},if=pv", f"file={disk1},if=pv,readonly=on"],
    )
    assert "PASS virtio/pvblk" in output, output[-3000:]
    assert (result.status, result.reason) == (0, "SBI shutdown")
    after = disk0.read_bytes()
    assert after[: 1024 * SECTOR] == b"".join(written(s) for s in range(1024))
    assert after[1024 * SECTOR :] == before0[1024 * SECTOR :]
    assert disk1.read_bytes() == before1
    stats = machine.statistics()["pvio"]
    assert machine.virtio == []  # no virtio slot in use: everything went the pv way
    blk0, blk1 = stats["pv-blk0"], stats["pv-blk1"]
    # 32 + 6 + 1 writes and flush, 9 reads, 7 mixed, 64 single reads; disk1: 16 reads, 1 write
    assert blk0["requests"] == 39 + 9 + 7 + 64 and blk1["requests"] == 17
    assert blk0["notifies"] == 3 + 64 and blk1["notifies"] == 2
    assert blk0["errors"] == 6 and blk1["errors"] == 1
    assert blk0["flushes"] == 1 and blk0["written_bytes"] == 1024 * SECTOR
    calls = machine.sbi.by_extension[Extension.RVH_PVIO]
    # NOTIFY per batch, plus the probe-time DEVICE_INFO calls and SET_RINGs (3 + 2)
    assert calls == blk0["notifies"] + blk1["notifies"] + 5
    assert "pvblk: 136 requests, 69 notifies" in output


@pytest.mark.slow
def test_pvnet_guest_on_a_hub(tmp_path):
    pcap = tmp_path / "a.pcap"
    result, output, machine = run_sbi_elf(
        virtio_guest("pvnet"),
        netdevs=[
            f"hub,id=h0,if=pv,mac=52:54:00:12:34:01,pcap={pcap}",
            "hub,id=h0,if=pv,mac=52:54:00:12:34:02",
        ],
    )
    assert "PASS virtio/pvnet" in output, output[-3000:]
    assert (result.status, result.reason) == (0, "SBI shutdown")
    for line in ("A to B: 0 and 600", "B to A: 600 and 0", "both ways: 600 and 600"):
        assert f"pvnet: {line} frames" in output
    from rvh.devices.virtio.netdev import read_pcap

    frames = [data for _, data in read_pcap(str(pcap))]
    assert len(frames) == 4 * 600  # every frame passed NIC A's tap, one way or the other
    assert machine.statistics()["hubs"]["h0"]["frames"] == len(frames)
    stats = machine.statistics()["pvio"]
    for nic in stats.values():
        assert nic["tx_frames"] == 1200 and nic["rx_frames"] == 1200
        assert nic["rx_dropped_overrun"] == 0 and nic["rx_dropped_not_ready"] == 0
        # batches: far fewer NOTIFY calls than requests
        assert nic["notifies"] * 4 < nic["requests"]

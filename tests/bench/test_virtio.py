"""rvh bench virtio --vm: picking rows (--rows), and its mistakes as one line with status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support import ROOT

from rvh.bench.virtio import ROW_NAMES, parse_rows
from rvh.errors import ConfigError


def test_rows_come_in_the_tables_order_once_each():
    assert parse_rows(None) == list(ROW_NAMES)
    assert parse_rows("hw-passthrough,native") == ["native", "hw-passthrough"]
    assert parse_rows(" native , native,trap-emulated") == ["native", "trap-emulated"]
    with pytest.raises(ConfigError, match="--rows: kvm: use native, native-pv, hw-emulated"):
        parse_rows("native,kvm")
    with pytest.raises(ConfigError, match="--rows: give at least one"):
        parse_rows(",")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--vm", "--rows", "hw"], "--rows: hw: use native"),
        (["--rows", "native"], "--rows: only with --vm"),
    ],
)
def test_bad_rows_are_one_line_and_status_2(arguments, message):
    result = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "bench", "virtio", *arguments],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr


def test_the_benchmark_disk_image_is_made_or_refused_in_one_line(tmp_path):
    from rvh.bench.phases import disk_image
    from rvh.errors import RvhError

    image = tmp_path / "bench.img"
    disk_image(image, 1)
    assert image.stat().st_size == 1 << 20
    # a place it cannot be written (mkimage.py fails): one line naming the cause, the
    # RvhError the CLI prints, instead of the CalledProcessError traceback it used to be
    with pytest.raises(RvhError) as refused:
        disk_image(tmp_path / "no-such-directory" / "bench.img", 1)
    message = str(refused.value)
    assert "\n" not in message and "could not be made" in message
    assert "No such file or directory" in message

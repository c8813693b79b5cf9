"""tools/mkcpio.py writes the newc cpio archives Linux unpacks as its initramfs: checked
against the format's fields (and GNU cpio's reading of them where it is installed)."""

from __future__ import annotations

import importlib.util
import lzma
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("mkcpio", ROOT / "tools" / "mkcpio.py")
assert _spec is not None and _spec.loader is not None
mkcpio = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mkcpio)


def parse_newc(data: bytes) -> list[dict]:
    """The entries of a newc archive, read by the format's definition."""
    entries = []
    offset = 0
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        name_size, file_size = fields[11], fields[6]
        name_start = offset + 110
        name = data[name_start : name_start + name_size - 1].decode()
        assert data[name_start + name_size - 1] == 0
        body_start = (name_start + name_size + 3) & ~3
        body = data[body_start : body_start + file_size]
        offset = (body_start + file_size + 3) & ~3
        if name == "TRAILER!!!":
            assert len(data) % 4 == 0
            return entries
        entries.append(
            {"name": name, "mode": fields[1], "uid": fields[2], "body": body,
             "rdev": (fields[9], fields[10])}
        )  # fmt: skip


def test_entries_of_every_kind(tmp_path):
    (tmp_path / "hello").write_bytes(b"hello, world\n")
    (tmp_path / "mod.ko.xz").write_bytes(lzma.compress(b"\x7fELF module"))
    listing = tmp_path / "list"
    listing.write_text(
        "# an initramfs\n"
        "dir /dev 0755 0 0\n"
        "nod /dev/console 0600 0 0 c 5 1\n"
        "file /init hello 0755 0 0\n"
        "file /lib/mod.ko mod.ko.xz 0644 1000 1000\n"
        "slink /bin/sh /bin/busybox 0777 0 0\n"
    )
    entries = parse_newc(mkcpio.build(listing))
    assert [e["name"] for e in entries] == ["dev", "dev/console", "init", "lib/mod.ko", "bin/sh"]
    dev, console, init, module, sh = entries
    assert dev["mode"] == stat.S_IFDIR | 0o755
    assert console["mode"] == stat.S_IFCHR | 0o600 and console["rdev"] == (5, 1)
    assert init["mode"] == stat.S_IFREG | 0o755 and init["body"] == b"hello, world\n"
    assert module["body"] == b"\x7fELF module" and module["uid"] == 1000  # decompressed
    assert sh["mode"] == stat.S_IFLNK | 0o777 and sh["body"] == b"/bin/busybox"


@pytest.mark.parametrize(
    "line, message",
    [
        ("file /a missing 0644 0 0", "cannot read"),
        ("dir /a 0755 0", "dir takes 4 fields"),
        ("pipe /a 0644 0 0", "unknown entry kind"),
        ("dir /a 0999 0 0", "bad mode"),
        ("nod /a 0600 0 0 x 1 1", "device kind must be c or b"),
    ],
)
def test_bad_lines_are_refused_in_one_line(tmp_path, line, message):
    listing = tmp_path / "list"
    listing.write_text(line + "\n")
    with pytest.raises(mkcpio.ListError, match=message):
        mkcpio.build(listing)


def test_a_path_may_appear_once(tmp_path):
    listing = tmp_path / "list"
    listing.write_text("dir /a 0755 0 0\ndir /a 0755 0 0\n")
    with pytest.raises(mkcpio.ListError, match="duplicate"):
        mkcpio.build(listing)

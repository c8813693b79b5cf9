#!/usr/bin/env python3
"""Write an initramfs: a cpio archive in the "new ASCII" (newc) format the Linux kernel unpacks
(Documentation/driver-api/early-userspace/buffer-format.rst), built from a list of entries so
that no root privilege is needed (device nodes and owners are written, not created).

    python tools/mkcpio.py LIST -o initramfs.cpio

LIST has one entry a line (``#`` starts a comment), in the spelling of the kernel's
gen_init_cpio lists; paths in the archive are absolute:

    dir   /dev 0755 0 0
    file  /init guests/linux/init 0755 0 0
    slink /bin/sh /bin/busybox 0777 0 0
    nod   /dev/console 0600 0 0 c 5 1

A ``file`` whose source ends in ``.xz`` is stored decompressed (the kernel's modules come
xz-compressed; a kernel loads them faster, and without its xz module support, uncompressed).
Relative sources are relative to the list's directory, or to ``--root`` when given.
"""

from __future__ import annotations

import argparse
import lzma
import stat
import sys
from pathlib import Path

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


class ListError(Exception):
    """A line of the list that cannot be turned into an entry."""


def _header(
    inode: int,
    mode: int,
    uid: int,
    gid: int,
    nlink: int,
    size: int,
    name: bytes,
    rdev_major: int = 0,
    rdev_minor: int = 0,
) -> bytes:
    # newc header: magic, then 13 fields of 8 hex digits; mtime 0 keeps the archive reproducible
    fields = (inode, mode, uid, gid, nlink, 0, size, 0, 0, rdev_major, rdev_minor, len(name) + 1, 0)
    return MAGIC + b"".join(b"%08X" % value for value in fields)


def _pad4(length: int) -> bytes:
    return bytes(-length % 4)


class CpioWriter:
    """Appends entries to a newc archive in memory."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.inode = 1
        self.names: set[str] = set()

    def add(
        self,
        name: str,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        body: bytes = b"",
        rdev: tuple[int, int] = (0, 0),
    ) -> None:
        name = name.lstrip("/")
        if not name or name in self.names:
            raise ListError(f"{'/' + name}: empty or duplicate path")
        self.names.add(name)
        encoded = name.encode()
        nlink = 2 if stat.S_ISDIR(mode) else 1
        header = _header(self.inode, mode, uid, gid, nlink, len(body), encoded, *rdev)
        self.inode += 1
        self.data += header + encoded + b"\0"
        self.data += _pad4(len(header) + len(encoded) + 1)
        self.data += body + _pad4(len(body))

    def finish(self) -> bytes:
        encoded = TRAILER.encode()
        header = _header(0, 0, 0, 0, 1, 0, encoded)
        self.data += header + encoded + b"\0" + _pad4(len(header) + len(encoded) + 1)
        self.data += _pad4(len(self.data))
        return bytes(self.data)


def _number(text: str, base: int, what: str, line: str) -> int:
    try:
        return int(text, base)
    except ValueError:
        raise ListError(f"bad {what} {text!r} in: {line}") from None


def build(list_path: Path, root: Path | None = None) -> bytes:
    """The archive described by the list at ``list_path``."""
    writer = CpioWriter()
    base = root if root is not None else list_path.parent
    for raw in list_path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, *args = line.split()
        expected = {"dir": 4, "file": 5, "slink": 5, "nod": 7}.get(kind)
        if expected is None:
            raise ListError(f"unknown entry kind {kind!r} in: {line}")
        if len(args) != expected:
            raise ListError(f"{kind} takes {expected} fields, got {len(args)}: {line}")
        name = args[0]
        if kind == "dir":
            perm, uid, gid = args[1:]
            writer.add(
                name,
                stat.S_IFDIR | _number(perm, 8, "mode", line),
                _number(uid, 10, "uid", line),
                _number(gid, 10, "gid", line),
            )
        elif kind == "file":
            source, perm, uid, gid = args[1:]
            path = base / source
            try:
                body = path.read_bytes()
            except OSError as error:
                raise ListError(f"{path}: cannot read ({error.strerror})") from None
            if path.suffix == ".xz":
                body = lzma.decompress(body)
            writer.add(
                name,
                stat.S_IFREG | _number(perm, 8, "mode", line),
                _number(uid, 10, "uid", line),
                _number(gid, 10, "gid", line),
                body,
            )
        elif kind == "slink":
            target, perm, uid, gid = args[1:]
            writer.add(
                name,
                stat.S_IFLNK | _number(perm, 8, "mode", line),
                _number(uid, 10, "uid", line),
                _number(gid, 10, "gid", line),
                target.encode(),
            )
        else:
            perm, uid, gid, dev_kind, major, minor = args[1:]
            if dev_kind not in ("c", "b"):
                raise ListError(f"device kind must be c or b, got {dev_kind!r}: {line}")
            type_bits = stat.S_IFCHR if dev_kind == "c" else stat.S_IFBLK
            writer.add(
                name,
                type_bits | _number(perm, 8, "mode", line),
                _number(uid, 10, "uid", line),
                _number(gid, 10, "gid", line),
                rdev=(_number(major, 10, "major", line), _number(minor, 10, "minor", line)),
            )
    return writer.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write a newc cpio archive (an initramfs)")
    parser.add_argument("list", type=Path, help="entry list (gen_init_cpio spelling)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--root", type=Path, help="where relative sources are")
    args = parser.parse_args(argv)
    try:
        archive = build(args.list, args.root)
    except (ListError, OSError, lzma.LZMAError) as error:
        print(f"mkcpio: {error}", file=sys.stderr)
        return 1
    args.output.write_bytes(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The boot ROM at 0x1000: the same reset code as QEMU 7.2's virt board, so that traces of both
start alike from the first instruction.

    auipc t0, 0            t0 = 0x1000
    addi  a2, t0, 40       a2 = &fw_dynamic_info (OpenSBI's "fw_dynamic" hand-over block)
    csrr  a0, mhartid
    ld    a1, 32(t0)       a1 = the device tree's address
    ld    t0, 24(t0)       t0 = where to start
    jr    t0
    .dword start, fdt
    fw_dynamic_info: magic "OSBI", version 2, next_addr, next_mode = S (1), options 0, boot hart 0
"""

from __future__ import annotations

import struct

RESET_CODE = (0x00000297, 0x02828613, 0xF1402573, 0x0202B583, 0x0182B283, 0x00028067)
FW_DYNAMIC_MAGIC = 0x4942534F
FW_DYNAMIC_VERSION = 2
NEXT_MODE_S = 1


def boot_rom(start: int, fdt_address: int, next_address: int | None = None) -> bytes:
    """ROM image that jumps to ``start`` with a0 = hartid, a1 = fdt, a2 = fw_dynamic_info."""
    code = struct.pack("<6I", *RESET_CODE)
    code += struct.pack("<QQ", start, fdt_address)
    info = struct.pack(
        "<6Q",
        FW_DYNAMIC_MAGIC,
        FW_DYNAMIC_VERSION,
        start if next_address is None else next_address,
        NEXT_MODE_S,
        0,
        0,
    )
    return code + info

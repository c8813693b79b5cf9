"""Debian's OpenSBI (fw_jump) boots on rvh into an S-mode payload, as on QEMU's virt board."""

import pytest
from support import build_elf, require_opensbi

from rvh.config import MachineConfig
from rvh.machine import Machine

PAYLOAD = """
    mv s1, a0                 # hartid
    la s0, msg
1:  lbu a0, 0(s0)
    beqz a0, 2f
    li a7, 1                  # legacy console putchar
    ecall
    addi s0, s0, 1
    j 1b
2:  li a7, 0x10               # BASE: get_spec_version
    li a6, 0
    ecall
    li t0, 0x01000000         # SBI 1.0 (OpenSBI 1.1)
    bne a1, t0, 4f
    li a0, 'V'
    li a7, 1
    ecall
4:  li a7, 0x53525354         # SRST: shutdown
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
3:  j 3b
msg: .asciz "payload: hello from S-mode\\n"
"""


@pytest.mark.parametrize("harts", [1, 2])
def test_opensbi_boots_into_the_payload(tmp_path, harts):
    payload = build_elf(PAYLOAD, tmp_path / "payload.elf", base=0x8020_0000)
    output = bytearray()
    machine = Machine(
        MachineConfig(harts=harts, max_instructions=200_000_000), output=output.extend
    )
    machine.load_firmware(str(require_opensbi()), str(payload))
    result = machine.run_sync()
    text = output.decode(errors="replace")
    assert "OpenSBI v1.1" in text
    assert "Platform Name             : riscv-virtio,qemu" in text
    assert "Boot HART ISA Extensions  : time,sstc" in text
    assert f"Platform HART Count       : {harts}" in text
    assert "payload: hello from S-mode" in text
    assert result.status == 0  # SRST shutdown through the test device
    assert result.reason == "test device: pass"
    # OpenSBI writes \r\n for \n; the V says the payload saw SBI spec version 1.0
    assert text.endswith("payload: hello from S-mode\r\nV")

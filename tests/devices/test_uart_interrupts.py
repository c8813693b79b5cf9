"""Interrupt-driven console: a received byte raises the UART's line at the PLIC, the S-mode
payload takes the external interrupt, claims source 10 and reads the byte; THR-empty
interrupts drive transmission."""

from support import build_elf, needs_toolchain

from rvh.config import MachineConfig
from rvh.machine import Machine

pytestmark = needs_toolchain

PAYLOAD = """
    la t0, handler
    csrw stvec, t0
    li t0, 0x0c000000
    li t1, 1
    sw t1, 40(t0)             # priority of source 10
    li t2, 0x0c002080         # enables of context 1 (hart 0, S-mode)
    li t1, 1 << 10
    sw t1, 0(t2)
    li t2, 0x0c201000         # threshold of context 1
    sw zero, 0(t2)
    li s0, 0x10000000
    li t1, 1
    sb t1, 1(s0)              # IER: received data available
    li t1, 1 << 9
    csrs sie, t1              # SEIE
    csrsi sstatus, 2          # SIE
1:  wfi
    j 1b
.balign 4
handler:
    csrr s2, scause
    li t2, 0x0c201004
    lw s3, 0(t2)              # claim
    lbu s4, 0(s0)             # the byte
    sw s3, 0(t2)              # complete
    addi a0, s4, 1            # echo the next letter through the UART
    sb a0, 0(s0)
    li a7, 0x53525354         # shut down
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
"""


def test_received_byte_interrupts_through_the_plic(tmp_path):
    elf = build_elf(PAYLOAD, tmp_path / "uartirq.elf", base=0x8020_0000)
    output = bytearray()
    machine = Machine(
        MachineConfig(firmware_traps=True, max_instructions=1_000_000), output=output.extend
    )
    machine.load_sbi_payload(str(elf))
    machine.uart.feed(b"a")  # typed before the guest enabled the interrupt: stays pending
    result = machine.run_sync()
    hart = machine.harts[0]
    assert result.status == 0, result.reason
    assert hart.x(18) == (1 << 63) | 9  # supervisor external interrupt
    assert hart.x(19) == 10  # the PLIC gave the UART's source
    assert hart.x(20) == ord("a")
    assert bytes(output) == b"b"
    assert machine.plic.claims == 1

/*
 * htif_hello.S - prints "Hello over HTIF" through the HTIF console and exits
 * with tohost = 1 (pass, exit status 0).  No UART, no syscon.
 * QEMU: -machine spike -bios none (the virt machine has no HTIF).
 */
#include "htif.inc"

    .text
htif_main:
    la      a0, msg
    call    htif_puts
    li      a0, 0
    j       htif_exit

    .section .rodata
msg:
    .asciz  "Hello over HTIF\n"

/*
 * htif_fail.S - prints a line through the HTIF console, then exits with
 * tohost = (3 << 1) | 1: failure with exit code 3.
 * QEMU: -machine spike -bios none; the expected exit status is 3.
 */
#include "htif.inc"

    .text
htif_main:
    la      a0, msg
    call    htif_puts
    li      a0, 3
    j       htif_exit

    .section .rodata
msg:
    .asciz  "HTIF fail test: exiting with code 3\n"

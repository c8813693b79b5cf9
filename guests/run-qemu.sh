#!/bin/sh
# run-qemu.sh ELF [extra qemu args...]
# Run one rvh guest on QEMU (the reference emulator) and return its exit status.
#   - guests under htif/ run on "-machine spike" (HTIF tohost/fromhost),
#     all others on "-machine virt" (UART 16550A + syscon exit device)
#   - TIMEOUT (default 20 s) bounds the run; status 124 means it timed out
#   - QEMU overrides the qemu binary
set -u
if [ $# -lt 1 ]; then
    echo "usage: $0 ELF [qemu args...]" >&2
    exit 2
fi
elf=$1
shift
QEMU=${QEMU:-qemu-system-riscv64}
TIMEOUT=${TIMEOUT:-20}
case "$elf" in
    */htif/*|htif/*) machine=spike ;;
    *) machine=virt ;;
esac
exec timeout "$TIMEOUT" "$QEMU" -machine "$machine" -cpu rv64,f=false,d=false \
    -bios none -m 256 -nographic -kernel "$elf" "$@" </dev/null

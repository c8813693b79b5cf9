#!/bin/sh
# run-qemu.sh ELF [extra qemu args...]
# Run one rvh guest on QEMU (the reference emulator) and return its exit status.
#   - guests under htif/ run on "-machine spike" (HTIF tohost/fromhost),
#     all others on "-machine virt" (UART 16550A + syscon exit device)
#   - KIND selects how the guest is started; by default it follows the path:
#       KIND=mmode  (default) bare M-mode ELF: -bios none, -cpu rv64,f=true,d=true
#       KIND=smode  (guests under smode/, smode-pv/, bench/overhead[-pv]/) S-mode payload at 0x8020_0000 under
#                   OpenSBI fw_jump ($OPENSBI): -bios $OPENSBI, -cpu rv64,h=false
#   - guests under virtio/ run as KIND=smode with the devices that
#     virtio/qemu-args.sh prints (fresh disk images in build/virtio/img,
#     two NICs on a hub, virtio-mmio version 2), then the extra args;
#     VIRTIO_AUTO=0 leaves the devices out (give your own)
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
OPENSBI=${OPENSBI:-/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf}
case "$elf" in
    */htif/*|htif/*) machine=spike ;;
    *) machine=virt ;;
esac
if [ -z "${KIND:-}" ]; then
    case "$elf" in
        */smode/*|smode/*|*/smode-pv/*|smode-pv/*|*/virtio/*|virtio/*|*/bench/overhead/*|bench/overhead/*) KIND=smode ;;
        */bench/overhead-pv/*|bench/overhead-pv/*|*/hyp-pv/*|hyp-pv/*) KIND=smode ;;
        *) KIND=mmode ;;
    esac
fi
case "$elf" in
    */virtio/*|virtio/*)
        if [ "${VIRTIO_AUTO:-1}" != 0 ]; then
            vargs=$("$(dirname "$0")/virtio/qemu-args.sh" "$elf") || exit 2
            # shellcheck disable=SC2086
            set -- $vargs "$@"
        fi ;;
esac
case "$KIND" in
    smode)
        exec timeout "$TIMEOUT" "$QEMU" -machine virt -cpu rv64,h=false \
            -bios "$OPENSBI" -m 256 -nographic -kernel "$elf" "$@" </dev/null ;;
    mmode)
        exec timeout "$TIMEOUT" "$QEMU" -machine "$machine" -cpu rv64,f=true,d=true \
            -bios none -m 256 -nographic -kernel "$elf" "$@" </dev/null ;;
    *)
        echo "$0: unknown KIND=$KIND (mmode or smode)" >&2
        exit 2 ;;
esac

#!/bin/sh
# run.sh WHAT [guest...]   run the H-extension guests and summarize
#
#   WHAT = qemu         the -qemu builds (QEMU_DEVIATIONS) on QEMU 7.2: all must pass
#          strict-qemu  the strict builds on QEMU 7.2 (fail exactly where QEMU deviates)
#          rvh          the strict builds on rvh ($RVH, default /work/main/.venv/bin/rvh)
#   guests default to all of them; a path to an .elf is run as is.
#
# Output of each run goes to ../build/hext/<name>.<what>.out; exit status is the
# number of guests whose exit status was not 0.
# QEMU: qemu-system-riscv64 -machine virt -cpu rv64,h=true,f=false,d=false -bios none -m 256
# TIMEOUT (default 60 s) bounds each run (status 124 = timed out).
set -u
here=$(cd "$(dirname "$0")" && pwd)
B=$here/../build/hext
QEMU=${QEMU:-qemu-system-riscv64}
RVH=${RVH:-$here/../../.venv/bin/rvh}
TIMEOUT=${TIMEOUT:-60}
what=${1:-qemu}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- hcsr hvirt hvinst hstage hirq hbench

fail=0
for g in "$@"; do
    case "$g" in
        *.elf) elf=$g; name=$(basename "$g" .elf) ;;
        *) case "$what" in
               qemu) elf=$B/$g-qemu.elf ;;
               *) elf=$B/$g.elf ;;
           esac
           name=$g ;;
    esac
    out=$B/$name.$what.out
    t0=$(date +%s%N)
    case "$what" in
        qemu|strict-qemu)
            timeout "$TIMEOUT" "$QEMU" -machine virt -cpu rv64,h=true,f=false,d=false \
                -bios none -m 256 -nographic -kernel "$elf" </dev/null >"$out" 2>&1 ;;
        rvh)
            timeout "$TIMEOUT" "$RVH" run "$elf" </dev/null >"$out" 2>&1 ;;
        *) echo "usage: $0 qemu|strict-qemu|rvh [guest...]" >&2; exit 2 ;;
    esac
    st=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    ndev=$(grep -c '^SPEC ' "$out")
    nfail=$(grep -c '^FAIL .* test [0-9]*:' "$out")
    if [ $st -eq 0 ]; then r=ok; else r=FAILED; fail=$((fail + 1)); fi
    printf '%-8s %-12s exit %3d  %6d ms  %2d failed checks  %2d QEMU deviations  %s\n' \
        "$name" "$what" $st $ms "$nfail" "$ndev" $r
    if [ $st -ne 0 ]; then
        grep -E '^(FAIL|\*\*\*)' "$out" | head -n 40 | sed 's/^/    | /'
    fi
done
exit $fail

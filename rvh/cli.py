"""The ``rvh`` command.

    rvh run [--sbi] ELF | --firmware FW [--kernel PAYLOAD] [--memory SIZE] [--smp N]
            [--max-insns N] [--stats] [--trace FILE|-] [--serial WHERE] [--drive ...] [--netdev ...]
            [--gdb tcp::PORT|unix:PATH [--gdb-wait]] [--save FILE [--save-at N]]
    rvh run --restore FILE [--clone K] [--max-insns N] [--stats] [--save FILE [--save-at N]]
    rvh run --incoming tcp:HOST:PORT [--stats]
        (and ``rvh run ... --migrate-to tcp:HOST:PORT [--migrate-at N]``)
    rvh snapshot info FILE
    rvh appliance pack OUT.rvha --from FILE          (and ``rvh run OUT.rvha``)
    rvh diff ELF [--reference FILE] [--cpu SPEC] [--context N]
    rvh dtb [-o FILE] [--memory SIZE] [--smp N]
    rvh disasm ELF | WORD...
    rvh bench mips|mmu|hext|virtio [--repeat N]
    rvh bench overhead [--quick] [--json FILE] [--plot FILE.png] [--modes LIST] [--dask [ADDR]]

Errors are one line on stderr and an exit status from :mod:`rvh.errors`; the guest's own exit
code is the status of a normal run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, cast

from rvh import __version__
from rvh.config import MachineConfig, parse_cpu, parse_size
from rvh.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ConfigError,
    RvhError,
)

if TYPE_CHECKING:
    from rvh.machine import Machine


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage dump
        self.exit(EXIT_USAGE, f"rvh: {message} (see 'rvh --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(float(text)) if "e" in text.lower() and "x" not in text else int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except RvhError as error:
        raise argparse.ArgumentTypeError(error.message) from None


REPEAT_HELP = "runs of the guest; each phase's median is reported (default 3)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rvh",
        description="rvh: a RISC-V RV64 system emulator with the hypervisor extension, "
        "for seeing and measuring virtualization.",
        epilog="Exit status: the guest's exit code; 123 the guest can never progress (every "
        "hart in wfi with nothing to wake it, or in a trap loop), 124 instruction limit "
        "reached, 125 cannot load the program or allocate guest RAM, 126 emulator error, "
        "130 interrupted (Ctrl-C), 141 stdout closed (| head), 143 terminated (SIGTERM), "
        "2 bad command line.",
    )
    parser.add_argument("--version", action="version", version=f"rvh {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a bare-metal RV64 ELF",
        description="Run a bare-metal RV64 ELF on the virt board.  The boot ROM jumps to the "
        "ELF entry in M-mode with a0 = hartid and a1 = device tree, as QEMU's virt board "
        "does.  The console is the 16550 UART (stdout); a guest ends the run through the "
        "test device (0x100000), HTIF (a 'tohost' symbol) or SBI shutdown (--sbi).  A hart "
        "that can never progress (wfi with nothing to wake it, a trap loop) ends it too.",
    )
    run.add_argument(
        "elf",
        metavar="ELF",
        nargs="?",
        help="program to run (bare M-mode, or the S-mode payload with --sbi), or an "
        "appliance OUT.rvha (rvh appliance pack)",
    )
    run.add_argument(
        "--sbi",
        action="store_true",
        help="run ELF in S-mode on rvh's built-in SBI firmware (SBI v2.0)",
    )
    run.add_argument(
        "--hyp",
        action="store_true",
        help="run rvh's hypervisor (firmware/hyp, HS-mode) on the built-in SBI, with one VM "
        "per --guest",
    )
    run.add_argument(
        "--guest",
        action="append",
        default=[],
        metavar="SPEC",
        help="a VM for --hyp: PATH[,virt=hw|trap|pv][,mem=SIZE][,vcpus=N][,initrd=PATH]"
        "[,append=TEXT][,drive=IMG[,readonly=on]]...[,netdev=ID[,mac=MAC]]...[,io=PATH] "
        "(QEMU-style suboptions; repeatable, one VM each)",
    )
    run.add_argument(
        "--firmware",
        metavar="FW",
        help="M-mode firmware to boot instead: an ELF (e.g. OpenSBI's fw_jump.elf) or a raw "
        "binary loaded at the start of RAM (e.g. fw_dynamic.bin)",
    )
    run.add_argument(
        "--kernel",
        metavar="KERNEL",
        help="S-mode kernel: an ELF at its own addresses or a raw RISC-V Linux Image (2 MiB "
        "after the firmware, as QEMU places it); booted by --firmware FW, else by the "
        "built-in SBI",
    )
    run.add_argument(
        "--initrd",
        metavar="FILE",
        help="initial ramdisk, loaded where QEMU loads it (kernel + min(RAM/2, 128 MiB)) and "
        "named in /chosen",
    )
    run.add_argument(
        "--append",
        "--bootargs",
        dest="bootargs",
        metavar="TEXT",
        help="kernel command line: /chosen/bootargs in the device tree",
    )
    run.add_argument(
        "--rtc-base",
        metavar="DATE",
        help="the RTC's time at power-on: utc (the host's clock, default) or a fixed UTC date "
        "such as 2025-01-01T00:00:00 (reproducible runs); it then runs with virtual time",
    )
    run.add_argument(
        "--no-reboot",
        action="store_true",
        help="a guest's reboot (SBI SRST, syscon) ends the run with status 0 instead of "
        "restarting it (images are reloaded on a restart)",
    )
    run.add_argument(
        "--serial",
        default="stdio",
        metavar="WHERE",
        help="console: stdio (default; keyboard input too, Ctrl-A x quits), file:PATH or null",
    )
    run.add_argument(
        "--io-timing",
        choices=("host", "virtual"),
        default="host",
        help="when disk requests (virtio-blk, pv) complete: when the host's I/O is done (host, "
        "the default) or a fixed virtual delay after the notify (virtual: runs with disks "
        "repeat instruction for instruction)",
    )
    run.add_argument(
        "--realtime",
        action="store_true",
        help="idle harts sleep in real time until their timer, instead of "
        "jumping virtual time forward",
    )
    run.add_argument(
        "--drive",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="a virtio-blk disk: file=IMG[,format=raw][,readonly=on]"
        "[,cache=writeback|writethrough] (QEMU's spelling; repeatable); if=pv makes it a pv "
        "disk of the built-in SBI's platform I/O extension instead",
    )
    run.add_argument(
        "--netdev",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="a virtio-net NIC and its backend: hub,id=N (joins every NIC on hub N) or "
        "socket,id=N,udp=HOST:PORT,localaddr=HOST:PORT; add ,pcap=FILE to record its "
        "frames (repeatable); if=pv makes the NIC a pv one (platform I/O extension)",
    )
    _machine_options(run)
    run.add_argument(
        "--max-insns",
        type=_positive_int,
        metavar="N",
        help="stop after N instructions, counting ones that trapped (exit status 124)",
    )
    run.add_argument(
        "--tier",
        choices=("interp", "jit"),
        default="jit",
        help="jit (default): hot code also runs as host code, written directly on x86-64 "
        "hosts and compiled with LLVM once hotter (docs/performance.md); interp: the "
        "interpreter alone; --trace keeps to the interpreter",
    )
    run.add_argument(
        "--tier-cache",
        metavar="DIR|off",
        default="",
        help="with --tier jit: keep compiled blocks in DIR, so that the next run of the same "
        "program loads them instead of compiling (default: $RVH_CACHE_DIR/tier, else "
        "~/.cache/rvh/tier); off: compile every run",
    )
    run.add_argument(
        "--stats",
        action="store_true",
        help="print instructions, time, MIPS, exits and per-device I/O to stderr at the end "
        "(on Ctrl-C too, after where each hart was)",
    )
    run.add_argument(
        "--gdb",
        metavar="WHERE",
        help="serve gdb (gdb-multiarch: target remote) on tcp::PORT, tcp:HOST:PORT or "
        "unix:PATH; harts are threads, 'monitor help' lists rvh's commands (docs/gdb.md)",
    )
    run.add_argument(
        "--gdb-wait",
        action="store_true",
        help="with --gdb: stop before the first instruction until gdb continues (QEMU's -S)",
    )
    run.add_argument(
        "--trace",
        metavar="FILE",
        help="write a commit log (Spike's --log-commits format) of every retired instruction "
        "and trap to FILE (.gz: compressed; -: stdout)",
    )
    run.add_argument(
        "--save",
        metavar="FILE",
        help="VM file to save to: at --save-at N (then stop), or whenever rvh gets SIGUSR1 or "
        "Ctrl-A s on the console (and go on)",
    )
    run.add_argument(
        "--save-at",
        type=_positive_int,
        metavar="N",
        help="save to the --save file when the machine has executed N instructions (counted "
        "as --max-insns counts) and stop with status 0",
    )
    run.add_argument(
        "--restore",
        metavar="FILE",
        help="resume the VM saved in FILE (its machine, boot and disks come from the file; "
        "--max-insns, --stats, --serial, --trace and --save still apply)",
    )
    run.add_argument(
        "--migrate-to",
        metavar="tcp:HOST:PORT",
        help="migrate the running VM to an rvh run --incoming there: pre-copy of memory in "
        "rounds while the guest runs, then stop-and-copy; this rvh then exits with status 0",
    )
    run.add_argument(
        "--migrate-at",
        type=_positive_int,
        metavar="N",
        help="with --migrate-to: run to instruction N (counted as --max-insns counts), then "
        "begin the migration",
    )
    run.add_argument(
        "--incoming",
        metavar="tcp:HOST:PORT",
        help="take a VM migrated from an rvh run --migrate-to (listening on HOST:PORT) and "
        "resume it (machine options come with it, as with --restore)",
    )
    run.add_argument(
        "--clone",
        type=_positive_int,
        metavar="K",
        help="with --restore: start clone K of the VM, its disks under fresh overlays of its "
        "own (FILE.cloneK.DEVICE.img; the saved images stay untouched) and its NICs with MAC "
        "addresses of their own",
    )

    diff = commands.add_parser(
        "diff",
        help="compare a guest on rvh with QEMU 7.2, instruction by instruction",
        description="Run a bare-metal ELF on rvh in lockstep with QEMU 7.2's single-stepped "
        "trace (run here, or read from a reference made by tools/qemu_trace.py) and report the "
        "first divergence: the instruction, the fields that differ, the instructions before it. "
        "Known QEMU deviations are applied and listed (docs/testing.md).  Progress goes to "
        "stderr every 5 s.  Exit status 0 when they agree, 1 at a divergence, 126 when the "
        "guest traps for ever without retiring an instruction, 143 on SIGTERM.",
    )
    diff.add_argument("elf", metavar="ELF", help="bare-metal program (M-mode, as for rvh run)")
    diff.add_argument(
        "--reference",
        metavar="FILE",
        help="QEMU reference trace from tools/qemu_trace.py (default: run QEMU now)",
    )
    diff.add_argument(
        "--save-reference",
        metavar="FILE",
        help="keep the QEMU reference trace that was run, for later --reference use",
    )
    diff.add_argument(
        "--cpu",
        default="rv64",
        metavar="SPEC",
        help="hart model: rv64 (with H; QEMU -cpu rv64,h=true) or rv64,h=off",
    )
    diff.add_argument(
        "--context",
        type=_positive_int,
        default=10,
        metavar="N",
        help="instructions shown before a divergence (default 10)",
    )
    diff.add_argument(
        "--max-insns",
        type=_positive_int,
        default=2_000_000,
        metavar="N",
        help="compare at most N instructions, traps that retire nothing included "
        "(default 2,000,000)",
    )

    snapshot = commands.add_parser(
        "snapshot",
        help="look into VM files",
        description="Commands on VM files written by rvh run --save (docs/vm-files.md).",
    )
    snapshot_commands = snapshot.add_subparsers(
        dest="snapshot", metavar="COMMAND", parser_class=_Parser
    )
    info = snapshot_commands.add_parser(
        "info",
        help="check a VM file and print what is inside",
        description="Check a VM file "
        "(every checksum, the RAM pages, the disks' hashes) and print its machine, where its "
        "harts were, its devices and its sections.  Status 125 when it cannot be restored.",
    )
    info.add_argument("file", metavar="FILE")

    appliance = commands.add_parser(
        "appliance",
        help="virtual appliances: a saved VM and its disks in one file",
        description="Bundle a VM file and its disks into an appliance (.rvha); rvh run "
        "APPLIANCE.rvha starts it, each time as it was saved (docs/vm-files.md).",
    )
    appliance_commands = appliance.add_subparsers(
        dest="appliance", metavar="COMMAND", parser_class=_Parser
    )
    pack = appliance_commands.add_parser("pack", help="bundle a VM file and its disks")
    pack.add_argument("output", metavar="OUT.rvha")
    pack.add_argument("--from", dest="source", required=True, metavar="VM_FILE")
    pack.add_argument("--name", help="the appliance's name (default: OUT's)")

    dtb = commands.add_parser(
        "dtb",
        help="write the board's device tree blob",
        description="Write the flattened device tree rvh gives guests.",
    )
    dtb.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    _machine_options(dtb)

    disasm = commands.add_parser(
        "disasm",
        help="disassemble an ELF's code, or instruction words",
        description="Disassemble the loadable segments of an ELF, or the hexadecimal "
        "instruction words given (e.g. 00000297 8082), with rvh's decoder.",
    )
    disasm.add_argument("target", nargs="+", metavar="ELF|WORD")
    cache = commands.add_parser(
        "cache",
        help="look into or clear the translating tier's code cache",
        description="Show what the translating tier's code cache holds (the code `rvh run "
        "--tier jit` compiled, kept for the next runs of the same programs), or clear it.",
    )
    cache.add_argument(
        "--dir",
        metavar="DIR",
        help="the cache's directory (default: $RVH_CACHE_DIR/tier, else ~/.cache/rvh/tier)",
    )
    cache.add_argument(
        "--clear", action="store_true", help="delete the compiled code and its index"
    )
    bench = commands.add_parser(
        "bench", help="benchmarks", description="Measure rvh (and QEMU, when installed)."
    )
    bench_commands = bench.add_subparsers(dest="bench", metavar="BENCHMARK", parser_class=_Parser)
    mips = bench_commands.add_parser(
        "mips", help="CPU speed on guests/bench workloads, side by side with QEMU 7.2"
    )
    mips.add_argument(
        "--quick", action="store_true", help="short workloads (a smoke test, not a measurement)"
    )
    mips.add_argument("--no-qemu", action="store_true", help="do not run QEMU")
    mips.add_argument(
        "--tier",
        choices=("interp", "jit", "jit+cache", "both", "all"),
        default="interp",
        help="which of rvh's tiers to time: jit compiles in every run, jit+cache starts with "
        "the code cache an earlier run filled (both: interp and jit; all: the three; "
        "default interp)",
    )
    mips.add_argument(
        "--repeat",
        type=_positive_int,
        default=3,
        metavar="N",
        help="runs per workload and emulator; the median is reported (default 3)",
    )
    mmu = bench_commands.add_parser(
        "mmu", help="cost of Sv39 translation: one S-mode workload, bare then with Sv39"
    )
    mmu.add_argument("--repeat", type=_positive_int, default=3, metavar="N", help=REPEAT_HELP)
    hext = bench_commands.add_parser(
        "hext", help="cost of two-stage translation: one workload in S-mode, then in VS-mode"
    )
    hext.add_argument("--repeat", type=_positive_int, default=3, metavar="N", help=REPEAT_HELP)
    virtio = bench_commands.add_parser(
        "virtio", help="guest-visible virtio-blk MB/s and virtio-net frames/s (wall time)"
    )
    virtio.add_argument("--repeat", type=_positive_int, default=None, metavar="N", help=REPEAT_HELP)
    virtio.add_argument(
        "--vm",
        action="store_true",
        help="also as a VM of rvh's hypervisor in each mode over each I/O path (hw: emulated, "
        "passthrough; trap, pv: emulated), "
        "one table with exits per request (default 1 run each)",
    )
    virtio.add_argument(
        "--rows",
        metavar="LIST",
        help="with --vm: the rows to run, from native,native-pv,hw-emulated,hw-pv,"
        "hw-passthrough,trap-emulated,pv-emulated (default all; with --repeat they take turns)",
    )
    overhead = bench_commands.add_parser(
        "overhead",
        help="what virtualization costs: cpu, priv, ram, disk, net natively and in each VM mode",
    )
    overhead.add_argument(
        "--quick",
        action="store_true",
        help="one run of each (the counts are exact); else three, for the median host time",
    )
    overhead.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    overhead.add_argument("--plot", metavar="FILE.png", help="draw grouped bars per class")
    overhead.add_argument(
        "--modes",
        default="native,hw,trap,pv",
        metavar="LIST",
        help="modes to run, from native,hw,trap,pv (default all; native is always run)",
    )
    overhead.add_argument(
        "--dask",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask cluster (a local one when ADDRESS is not given)",
    )
    linux = bench_commands.add_parser(
        "linux",
        help="boot the Linux guest (guests/linux) to /init and power-off, beside QEMU 7.2",
    )
    linux.add_argument("--repeat", type=_positive_int, default=1, metavar="N", help=REPEAT_HELP)
    linux.add_argument(
        "--smp", type=_positive_int, default=1, metavar="N", help="harts (default 1)"
    )
    linux.add_argument("--no-qemu", action="store_true", help="do not run QEMU")
    linux.add_argument(
        "--vm",
        action="store_true",
        help="boot natively and as an hw and a trap VM of rvh's hypervisor instead (no QEMU)",
    )
    linux.add_argument(
        "--firmware", metavar="FW", help="boot rvh on this firmware (OpenSBI) instead of --sbi"
    )
    linux.add_argument(
        "--tier",
        choices=("interp", "jit", "both"),
        default="interp",
        help="which of rvh's tiers to boot on (both: rows for each; default interp)",
    )
    return parser


def _machine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-m",
        "--memory",
        type=_size,
        default=None,
        metavar="SIZE",
        help="RAM size, e.g. 256M or 1G (default 256M; with --hyp, enough for the VMs)",
    )
    parser.add_argument(
        "--smp",
        type=_positive_int,
        default=None,
        metavar="N",
        help="number of harts (1-8, default 1)",
    )
    parser.add_argument(
        "--cpu",
        default=None,
        metavar="SPEC",
        help="hart model, QEMU spelling: rv64 (RV64IMAFDC with S, U and H modes), rv64,h=off, "
        "rv64,f=off,d=off",
    )


class _Terminated:
    """SIGTERM, handled like Ctrl-C (the run stops at once, says where it was, prints its
    statistics) but reported as itself: the handler re-raises it as SIGINT, so it reaches the
    program through trio's own safe delivery of KeyboardInterrupt.  Where SIGINT is ignored
    (a background job of a script) that delivery does not exist, and SIGTERM keeps its
    default action rather than being swallowed."""

    received = False

    @classmethod
    def install(cls) -> None:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGTERM, cls._handle)

    @classmethod
    def _handle(cls, signum: int, frame: FrameType | None) -> None:
        cls.received = True
        signal.raise_signal(signal.SIGINT)


class _SaveSignal:
    """SIGUSR1 with ``run --save FILE``: save the VM and go on.  Installed as soon as the
    command line is read, so a signal during the (slow) start is not fatal: it is kept and
    the save happens before the first instruction."""

    machine: Machine | None = None
    early = False

    @classmethod
    def install(cls) -> None:
        signal.signal(signal.SIGUSR1, cls._handle)

    @classmethod
    def _handle(cls, signum: int, frame: FrameType | None) -> None:
        if cls.machine is None:
            cls.early = True
        else:
            cls.machine.request_save(from_signal=True)

    @classmethod
    def retire(cls) -> None:
        """The run is over, nothing is left to save: ignore SIGUSR1 from now on.  Python puts
        back the default action of the signals it handles when it shuts down, and that action
        ends the process: a save asked for just as a run ends would kill rvh, its status lost."""
        if signal.getsignal(signal.SIGUSR1) == cls._handle:
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)


def _stopped() -> tuple[str, str, int]:
    """How to report a KeyboardInterrupt: the word for the message, the reason for --stats,
    and the exit status."""
    if _Terminated.received:
        return "terminated", "terminated (SIGTERM)", EXIT_TERMINATED
    return "interrupted", "interrupted (Ctrl-C)", EXIT_INTERRUPTED


def _quiet_stdout() -> None:
    """stdout's reader has gone (``rvh ... | head``): send what is still buffered, and what
    the interpreter flushes at exit, nowhere instead of failing again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if args.command in ("run", "bench"):
        _Terminated.install()
    if args.command == "run" and args.save is not None:
        _SaveSignal.install()
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "dtb":
            return _dtb(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "snapshot":
            return _snapshot(args, parser)
        if args.command == "appliance":
            return _appliance(args, parser)
        if args.command == "bench":
            return _bench(args, parser)
        if args.command == "disasm":
            return _disasm(args)
        if args.command == "diff":
            return _diff(args)
    except RvhError as error:
        print(f"rvh: {error.message}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        word, _, status = _stopped()
        print(f"rvh: {word}", file=sys.stderr)
        return status
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    return EXIT_USAGE


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rvh.bench.mips import bench_mips, guests_dir
    from rvh.bench.phases import bench_phases

    if args.bench == "mips":
        groups = {"both": ("interp", "jit"), "all": ("interp", "jit", "jit+cache")}
        tiers = groups.get(args.tier, (args.tier,))
        return bench_mips(quick=args.quick, qemu=not args.no_qemu, repeat=args.repeat, tiers=tiers)
    if args.bench == "mmu":
        return bench_phases(
            guests_dir() / "smode" / "bench_sv39.elf",
            sbi=True,
            repeat=args.repeat,
            baseline="bare",
            title="rvh bench mmu",
        )
    if args.bench == "hext":
        return bench_phases(
            guests_dir() / "hext" / "hbench.elf",
            sbi=False,
            repeat=args.repeat,
            baseline="native",
            title="rvh bench hext",
        )
    if args.bench == "overhead":
        from rvh.bench.overhead import bench_overhead, parse_modes

        return bench_overhead(
            quick=args.quick,
            modes=parse_modes(args.modes),
            json_path=args.json,
            plot_path=args.plot,
            dask=args.dask,
        )
    if args.bench == "virtio":
        from rvh.bench.virtio import bench_virtio, bench_virtio_vm, parse_rows

        if args.vm:
            return bench_virtio_vm(repeat=args.repeat or 1, rows=parse_rows(args.rows))
        if args.rows is not None:
            raise ConfigError("--rows: only with --vm")
        return bench_virtio(repeat=args.repeat or 3)
    if args.bench == "linux":
        from rvh.bench.linux import bench_linux, bench_linux_vm

        if args.vm:
            if args.tier != "interp":
                raise ConfigError("--tier: bench linux --vm runs on the interpreter only")
            return bench_linux_vm(repeat=args.repeat)
        tiers = ("interp", "jit") if args.tier == "both" else (args.tier,)
        return bench_linux(
            repeat=args.repeat,
            harts=args.smp,
            qemu=not args.no_qemu,
            firmware=args.firmware,
            tiers=tiers,
        )
    parser.exit(
        EXIT_USAGE,
        "rvh: bench needs a benchmark name: mips, mmu, hext, virtio, overhead or linux\n",
    )
    return EXIT_USAGE


def _disasm(args: argparse.Namespace) -> int:
    from rvh.disasm_command import disassemble_elf, disassemble_words

    target = args.target[0]
    if len(args.target) == 1 and (
        os.path.lexists(target) or os.sep in target or target.endswith(".elf")
    ):
        lines = disassemble_elf(target)  # a path, even one that does not exist
    else:
        lines = disassemble_words(args.target)
    for line in lines:
        print(line)
    return 0


def _config(args: argparse.Namespace) -> MachineConfig:
    memory = args.memory if args.memory is not None else MachineConfig.memory
    config = MachineConfig(
        memory=memory,
        harts=args.smp or 1,
        extensions=parse_cpu(args.cpu or "rv64"),
        tier=getattr(args, "tier", "interp"),
        tier_cache=getattr(args, "tier_cache", ""),
    )
    config.validate()
    return config


def parse_rtc_base(text: str | None) -> int | None:
    """--rtc-base: None or "utc" for the host's clock, else an ISO date (UTC) in ns since the
    Unix epoch."""
    if text is None or text == "utc":
        return None
    import datetime

    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--rtc-base {text!r}: give utc or a date like 2025-01-01T00:00:00"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = when.timestamp()
    if seconds < 0:
        raise ConfigError(f"--rtc-base {text!r}: before 1970")
    return int(seconds) * 1_000_000_000 + when.microsecond * 1000


def _run(args: argparse.Namespace) -> int:
    if args.save_at is not None and args.save is None:
        raise ConfigError("--save-at N needs --save FILE")
    if args.save is not None:
        _check_save_path(args.save)
    if args.trace == "":
        raise ConfigError("--trace needs a file name (or - for stdout)")
    if args.clone is not None and args.restore is None:
        raise ConfigError("--clone K goes with --restore FILE")
    if args.save is not None and any("snapshot=on" in text for text in args.drive):
        raise ConfigError(
            "--save: a snapshot=on drive's writes are thrown away, so no VM file can keep "
            "them; use overlay=FILE"
        )
    if args.restore and args.incoming:
        raise ConfigError("--restore and --incoming both say where the VM comes from")
    if args.migrate_at is not None and args.migrate_to is None:
        raise ConfigError("--migrate-at N needs --migrate-to tcp:HOST:PORT")
    if args.migrate_to is not None:
        from rvh.migration import parse_address

        migrate_to = parse_address("--migrate-to", args.migrate_to)
    if args.elf and args.elf.endswith(".rvha"):
        if args.restore or args.incoming:
            raise ConfigError("an appliance is the VM: give no --restore or --incoming")
        args.restore, appliance_path, args.elf = None, args.elf, None
        machine = _restored_machine(args, appliance_path)
    elif args.restore or args.incoming:
        machine = _restored_machine(args)
    else:
        machine = _booted_machine(args)
    if args.migrate_to is not None:
        machine.migrate_to = migrate_to
        if args.migrate_at is not None:
            if args.migrate_at <= machine.steps:
                raise ConfigError(
                    f"--migrate-at {args.migrate_at}: the machine is already at instruction "
                    f"{machine.steps:,}"
                )
            machine.migrate_at = args.migrate_at
    _SaveSignal.machine = machine
    machine.save_path = args.save
    if _SaveSignal.early:
        machine.request_save(from_signal=True)
    if args.save_at is not None:
        if args.save_at <= machine.steps:
            raise ConfigError(
                f"--save-at {args.save_at}: the machine is already at instruction {machine.steps:,}"
            )
        machine.save_at = args.save_at
    return _run_machine(machine, args)


def _check_save_path(path: str) -> None:
    """Fail now, not after a long run, when the VM file cannot be written there."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConfigError(f"--save {path}: is a directory")
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"--save {path}: cannot write in {directory}")


def _restored_machine(args: argparse.Namespace, appliance: str | None = None) -> Machine:
    from rvh.snapshot import read_vm_file, restore_machine

    given = [
        name
        for name, value in (
            ("an ELF", args.elf),
            ("--sbi", args.sbi),
            ("--hyp", args.hyp),
            ("--guest", args.guest),
            ("--firmware", args.firmware),
            ("--kernel", args.kernel),
            ("--initrd", args.initrd),
            ("--bootargs", args.bootargs),
            ("--drive", args.drive),
            ("--netdev", args.netdev),
            ("--memory", args.memory),
            ("--smp", args.smp),
            ("--cpu", args.cpu),
            ("--realtime", args.realtime),
            ("--io-timing", args.io_timing != "host"),
        )
        if value
    ]
    if given:
        source = "--restore takes the machine from its VM file"
        if args.incoming:
            source = "--incoming takes the machine from the migration"
        raise ConfigError(f"{source}; give no {', '.join(given)}")
    # how this run goes, whatever machine it resumes
    run_options: dict[str, Any] = {
        "serial": args.serial,
        "max_instructions": args.max_insns,
        "trace_path": args.trace,
        "tier": args.tier,
        "tier_cache": args.tier_cache,
    }
    if args.incoming:
        from rvh.migration import parse_address, restore_incoming

        address = parse_address("--incoming", args.incoming)
        if args.clone is not None:
            raise ConfigError("--clone K goes with --restore FILE")
        return restore_incoming(address, **run_options)
    import rvh.machine  # noqa: F401 - the kernel's modules load first: not the VM file's cost

    start = time.perf_counter()
    if appliance is not None:
        from rvh.appliance import start as start_appliance

        if args.clone is not None:
            raise ConfigError("--clone K goes with --restore FILE")
        machine = start_appliance(appliance, **run_options)
        machine.restore_seconds = time.perf_counter() - start
        return machine
    vm = read_vm_file(args.restore)
    machine = restore_machine(vm, clone=args.clone, **run_options)
    machine.restore_seconds = time.perf_counter() - start
    return machine


def _booted_machine(args: argparse.Namespace) -> Machine:
    from rvh.boot import BareElf, BootRecipe, BuiltinSbiBoot, FirmwareBoot, HypervisorBoot
    from rvh.hyp import GuestSpec, attach_vm_devices, host_memory_needed
    from rvh.machine import Machine

    config = _config(args)
    config.max_instructions = args.max_insns
    config.bootargs = args.bootargs
    config.no_reboot = args.no_reboot
    config.rtc_base_ns = parse_rtc_base(args.rtc_base)
    config.serial = args.serial
    config.realtime = args.realtime
    config.io_timing = args.io_timing
    config.drives = args.drive
    config.netdevs = args.netdev
    guests = []
    if args.hyp:
        if args.sbi or args.elf or args.firmware or args.kernel or args.initrd:
            raise ConfigError(
                "--hyp runs its VMs from --guest SPEC; give no ELF, --sbi, --kernel or --initrd"
            )
        guests = [GuestSpec.parse(text) for text in args.guest]
        attach_vm_devices(config, guests)
        if args.memory is None:
            config.memory = max(config.memory, host_memory_needed(guests))
    elif args.guest:
        raise ConfigError("--guest goes with --hyp")
    elif args.firmware:
        if args.sbi or args.elf:
            raise ConfigError("--firmware boots its payload from --kernel; give no ELF or --sbi")
    elif args.kernel:
        if args.elf:
            raise ConfigError("give the kernel once: as ELF or as --kernel")
    elif args.elf is None:
        raise ConfigError("run needs an ELF (or --kernel KERNEL, or --firmware FW)")
    config.trace_path = args.trace
    recipe: BootRecipe
    if args.hyp:
        recipe = HypervisorBoot(guests)
    elif args.firmware:
        recipe = FirmwareBoot(args.firmware, args.kernel, args.initrd)
    elif args.sbi or args.kernel:
        recipe = BuiltinSbiBoot(args.kernel or args.elf, args.initrd)
    else:
        recipe = BareElf(args.elf, args.initrd)
    if args.gdb_wait and not args.gdb:
        raise ConfigError("--gdb-wait goes with --gdb WHERE")
    machine = Machine(config)
    if args.gdb:
        from rvh.gdb.stub import GdbStub

        machine.debugger = GdbStub(machine, args.gdb, args.gdb_wait)
    machine.boot(recipe)
    return machine


def _run_machine(machine: Machine, args: argparse.Namespace) -> int:
    try:
        result = machine.run_sync()
        _SaveSignal.retire()
        if machine.tier is not None:
            machine.tier.close()  # its code cache gets O2 code of this run's hot blocks
    except KeyboardInterrupt:
        if not args.stats:
            raise
        # a hung guest is what one interrupts: say where each hart was before the figures
        from rvh.machine import RunResult

        word, reason, status = _stopped()
        print(f"rvh: {word}; {_where(machine)}", file=sys.stderr)
        result = RunResult(status, reason, machine.instructions, machine.wall_seconds)
    if result.status == EXIT_BROKEN_PIPE:
        _quiet_stdout()  # what --trace - still buffers must not fail again at exit
    if (
        result.status not in (0, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_BROKEN_PIPE)
        and result.reason
        and not result.reason.startswith(("test device", "htif"))
    ):
        print(f"rvh: {result.reason}", file=sys.stderr)
    elif result.reason == "killed by gdb":
        print(f"rvh: {result.reason}", file=sys.stderr)  # QEMU too says so, and exits 0
    if machine.save_at is not None and not machine.saves:
        print(
            f"rvh: the run ended at instruction {machine.steps:,}, before --save-at "
            f"{machine.save_at:,}: nothing saved",
            file=sys.stderr,
        )
    if machine.migration is not None and machine.migration.report.seconds:
        print(f"rvh: {machine.migration.report.line()}", file=sys.stderr)
    for save in machine.saves:
        print(
            f"rvh: saved {save.path} at instruction {save.instructions:,} "
            f"({save.stored_bytes / 2**20:.1f} MiB stored, {save.seconds * 1000:.0f} ms)",
            file=sys.stderr,
        )
    if args.stats:
        stats = machine.statistics()
        exits = cast(dict[str, int], stats["exits"])
        lines = [
            f"instructions retired: {result.instructions}",
            f"wall time:            {result.seconds:.3f} s",
            f"speed:                {result.mips:.1f} MIPS",
            f"ended by:             {result.reason or 'end of run'}",
            "exits:                " + ", ".join(f"{k} {v}" for k, v in sorted(exits.items())),
            f"exceptions/interrupts: {stats['exceptions']}/{stats['interrupts']}",
            f"TLB misses:           {stats['tlb_misses']}",
            "retired by level:     "
            + ", ".join(f"{k} {v}" for k, v in machine.retired_by_level().items()),
        ]
        if len(machine.harts) > 1:  # which hart ran what (a hypervisor's guests on each, say)
            for hart in machine.harts:
                levels = ", ".join(f"{k} {v}" for k, v in hart.retired_by_level().items())
                lines.append(f"  on hart {hart.hartid}:         {levels}")
        if machine.restore_seconds is not None:
            lines.append(f"restored in:          {machine.restore_seconds * 1000:.1f} ms")
        lines += _tier_lines(stats, result.instructions)
        lines += _device_lines(stats)
        lines += _vm_lines(machine)
        print("\n".join(lines), file=sys.stderr)
    return result.status & 0xFF if result.status > 255 else result.status


def _where(machine: Machine) -> str:
    """Each hart's pc and mode, e.g. ``hart 0 at 0x80000010 in VS-mode``."""
    from rvh.cpu import layout as L

    places = []
    for hart in machine.harts:
        waiting = " (wfi)" if hart.state[L.WFI] else ""
        places.append(
            f"hart {hart.hartid} at {hart.pc & (2**64 - 1):#x} in {hart.mode}-mode{waiting}"
        )
    return ", ".join(places)


def _vm_lines(machine: Machine) -> list[str]:
    """With --hyp, one block per VM from the hypervisor's stats page (docs/hypervisor.md)."""
    from rvh.boot import HypervisorBoot
    from rvh.hyp import STATS_ADDRESS, STATS_SIZE, read_stats, vm_vmid

    if not isinstance(machine.recipe, HypervisorBoot):
        return []
    lines = []
    by_vmid = machine.hypervisor_by_vmid()
    for vm in read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE)):
        if vm.mode == "hw":
            vm.hypervisor_instructions = by_vmid.get(vm_vmid(vm.index), 0)
        lines += vm.lines()
    return lines


def _tier_lines(stats: dict, instructions: int) -> list[str]:
    """With --tier jit: what the translating tier compiled and how much of the run it ran."""
    tier = stats.get("tier")
    if tier is None:
        return []
    share = tier["instructions"] / instructions if instructions else 0.0
    return [
        f"tier jit:             {tier['blocks_baseline']} blocks given baseline code "
        f"({tier['baseline_seconds']:.3f} s of CPU), {tier['blocks_compiled']} blocks compiled, "
        f"{tier['blocks_optimized']} optimized, in {tier['batches']} batches "
        f"({tier['compile_seconds']:.3f} s of CPU); {tier['blocks_loaded']} loaded from the code "
        f"cache ({tier['load_seconds']:.3f} s of CPU)",
        f"code:                 {tier['blocks_cached']} blocks held "
        f"({tier['code_bytes']} bytes of code), {tier['blocks_evicted']} evicted",
        f"translated code:      {tier['instructions']} instructions ({share:.1%}) in "
        f"{tier['entries']} entries from the interpreter, {tier['page_flushes']} code pages "
        f"dropped after writes, {tier['flushes']} whole flushes",
    ] + (
        [
            f"code cache:           hot blocks compiled optimized into it for the next runs: "
            f"{tier['blocks_saved_running']} while the compiler was idle (of the optimized), "
            f"{tier['blocks_saved']} after the run ({tier['save_seconds']:.3f} s of CPU)"
        ]
        if tier["blocks_saved"] or tier["blocks_saved_running"]
        else []
    )


def _device_lines(stats: dict) -> list[str]:
    """One --stats line per virtio device and hub: what the guest's I/O amounted to."""
    lines = []
    for name, device in stats["virtio"].items():
        if "bytes_read" in device:
            text = (
                f"{device['reads']} reads ({device['bytes_read'] / 2**20:.1f} MiB), "
                f"{device['writes']} writes ({device['bytes_written'] / 2**20:.1f} MiB), "
                f"{device['flushes']} flushes, {device['ioerr'] + device['unsupp']} failed"
            )
        elif "rx_frames" in device:
            dropped = sum(
                v for k, v in device.items() if k.startswith(("rx_dropped", "tx_dropped"))
            )
            text = f"tx {device['tx_frames']} frames, rx {device['rx_frames']}, {dropped} dropped"
        else:
            continue
        if device["last_error"]:
            text += f"; needs reset: {device['last_error']}"
        lines.append(f"{name}:".ljust(22) + text)
    for name, device in stats.get("pvio", {}).items():
        calls = f"{device['requests']} requests in {device['notifies']} notifies"
        if "read_bytes" in device:
            text = (
                f"{calls}, {device['read_bytes'] / 2**20:.1f} MiB read, "
                f"{device['written_bytes'] / 2**20:.1f} MiB written, {device['flushes']} "
                f"flushes, {device['errors']} failed"
            )
        else:
            dropped = sum(v for k, v in device.items() if k.startswith("rx_dropped"))
            text = (
                f"{calls}, tx {device['tx_frames']} frames, rx {device['rx_frames']}, "
                f"{dropped} dropped, {device['errors']} failed"
            )
        text += f", {device['interrupts']} interrupts"
        if device["ring_errors"]:
            text += f", {device['ring_errors']} rings refused"
        lines.append(f"{name}:".ljust(22) + text)
    for name, hub in stats["hubs"].items():
        held = f"sender held back {hub['holds']} times"
        lines.append(f"hub {name}:".ljust(22) + f"{hub['frames']} frames, {held}")
    return lines


def _diff(args: argparse.Namespace) -> int:
    from rvh.diff import diff_command

    return diff_command(
        args.elf,
        reference=args.reference,
        save_reference=args.save_reference,
        hypervisor="h" in parse_cpu(args.cpu),
        context=args.context,
        max_instructions=args.max_insns,
    )


def _snapshot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rvh.snapshot import describe, read_vm_file

    if args.snapshot == "info":
        for line in describe(read_vm_file(args.file)):
            print(line)
        return 0
    parser.exit(EXIT_USAGE, "rvh: snapshot needs a command: info\n")
    return EXIT_USAGE


def _appliance(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from rvh.appliance import pack

    if args.appliance == "pack":
        if not args.output.endswith(".rvha"):
            raise ConfigError(f"appliance pack {args.output}: the name must end in .rvha")
        for line in pack(args.output, args.source, args.name):
            print(line)
        return 0
    parser.exit(EXIT_USAGE, "rvh: appliance needs a command: pack\n")
    return EXIT_USAGE


def _cache(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rvh.tier.engine import CodeCache, default_cache_directory

    directory = Path(args.dir) if args.dir else default_cache_directory()
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"cache: {directory} is not a directory")
    cache = CodeCache(directory)
    if args.clear:
        removed = cache.clear()
        print(f"code cache: {directory}: {removed} files deleted")
        return 0
    held = cache.summary()
    size = held["bytes"]
    shown = f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.1f} KiB"
    print(f"code cache:  {directory}")
    print(
        f"objects:     {held['objects']:,} files, {shown} "
        f"(the least recently used go past {held['limit'] / 2**20:.0f} MiB)"
    )
    print(
        f"blocks:      {held['blocks']:,} compiled, found by {held['region_keys']:,} "
        f"region keys at {held['places']:,} places"
    )
    print(f"index:       {held['logs']:,} logs")
    return 0


def _dtb(args: argparse.Namespace) -> int:
    from rvh.machine import Machine

    blob = Machine(_config(args), output=lambda data: None).device_tree()
    if args.output:
        try:
            with open(args.output, "wb") as out:
                out.write(blob)
        except OSError as error:
            raise ConfigError(f"-o {args.output}: cannot write ({error.strerror})") from None
    else:
        sys.stdout.buffer.write(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())

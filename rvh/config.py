"""Machine configuration and the board's memory map (QEMU virt compatible, ../shared/DESIGN.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rvh.errors import ConfigError

# Memory map of the virt board: the one source for the machine, the device tree (rvh/fdt.py) and
# the C header firmware and guests include (rvh/isa/cheader.py).  Values as QEMU 7.2's virt.
BOOT_ROM_BASE = 0x0000_1000
BOOT_ROM_SIZE = 0xF000
TEST_BASE = 0x0010_0000  # sifive,test0: the power-off/reset finisher (rvh/devices/syscon.py)
TEST_SIZE = 0x1000
RTC_BASE = 0x0010_1000  # google,goldfish-rtc (rvh/devices/goldfish_rtc.py)
RTC_SIZE = 0x1000
RTC_IRQ = 11
CLINT_BASE = 0x0200_0000
CLINT_SIZE = 0x10000
# CLINT registers (SiFive CLINT layout, as QEMU's): msip[hart] u32, mtimecmp[hart] u64, mtime u64
CLINT_MSIP_OFFSET = 0x0
CLINT_MTIMECMP_OFFSET = 0x4000
CLINT_MTIME_OFFSET = 0xBFF8
PLIC_BASE = 0x0C00_0000
PLIC_SIZE = 0x600000
# riscv,ndev: highest source ID.  A 96-source PLIC (IDs 0..95, 0 meaning "none") has 95 usable
# sources; QEMU 7.2 writes 0x60 here (see docs/devicetree.md).
PLIC_NDEV = 0x5F
UART0_BASE = 0x1000_0000
UART0_SIZE = 0x100
UART0_IRQ = 10
UART0_CLOCK_FREQUENCY = 0x38_4000  # 3.6864 MHz
VIRTIO_BASE = 0x1000_1000
VIRTIO_SIZE = 0x1000  # one slot; slot i is at VIRTIO_BASE + i * VIRTIO_SIZE
VIRTIO_SLOTS = 8
VIRTIO_IRQ_BASE = 1  # slot i raises PLIC source 1 + i
# A RISC-V IOMMU in front of the virtio devices (rvh/devices/iommu.py), when MachineConfig.iommu
# (rvh run --hyp with an io=passthrough VM): the device on slot i has device_id i; its wired
# interrupt vector v raises PLIC source IOMMU_IRQ_BASE + v.  Not on QEMU 7.2's virt board.
IOMMU_BASE = 0x1001_0000
IOMMU_SIZE = 0x1000
IOMMU_IRQ_BASE = 12
IOMMU_VECTORS = 4
# The platform I/O extension's devices (SBI RVH_PVIO, rvh/devices/pvio.py): pv device d
# completes requests with an edge on PLIC source PVIO_IRQ_BASE + d.  rvh only.
PVIO_IRQ_BASE = 16
PVIO_MAX_DEVICES = 8  # sources 16..23
RAM_BASE = 0x8000_0000

TIMEBASE_HZ = 10_000_000
NS_PER_INSTRUCTION = 1  # virtual time: one instruction per nanosecond (QEMU -icount shift=0)

DEFAULT_MEMORY = 256 * 1024 * 1024
MAX_MEMORY = 16 * 1024 * 1024 * 1024

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$")


def parse_cpu(text: str) -> str:
    """QEMU's -cpu spelling: ``rv64`` with options ``h``, ``f``, ``d`` = on|off (also
    true/false), e.g. ``rv64,h=off`` or ``rv64,f=off,d=off``.  Returns the misa letters."""
    name, *options = [part.strip() for part in text.split(",")]
    if name != "rv64":
        raise ConfigError(f"unknown cpu {name!r} (rvh models rv64)")
    extensions = "acdfimsuh"
    for option in options:
        key, _, value = option.partition("=")
        if key not in ("h", "f", "d") or value.lower() not in ("on", "off", "true", "false"):
            raise ConfigError(f"unknown cpu option {option!r} (supported: h, f, d = on|off)")
        if value.lower() in ("off", "false"):
            extensions = extensions.replace(key, "")
        elif key not in extensions:
            extensions += key
    if "d" in extensions and "f" not in extensions:
        raise ConfigError("cpu option d=on needs f=on (D depends on F)")
    return "".join(sorted(extensions))


def parse_size(text: str) -> int:
    """'256M', '1G', '65536' -> bytes (QEMU's -m spelling: a bare number means MiB)."""
    found = _SIZE.match(text)
    if not found:
        raise ConfigError(f"bad memory size {text!r} (examples: 256M, 1G)")
    number = int(found.group(1))
    unit = found.group(2).upper()
    scale = {"": 1 << 20, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
    return number * scale


def format_size(size: int) -> str:
    """Bytes the way people give them: '256 MiB', '16 GiB', '1.5 GiB', '4 KiB'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            text = f"{size / (1 << shift):.2f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{size} bytes"


IO_TIMINGS = ("host", "virtual")


@dataclass
class MachineConfig:
    memory: int = DEFAULT_MEMORY
    harts: int = 1
    extensions: str = "acdfimsuh"  # misa letters: RV64IMAFDC, S and U modes, the H extension
    firmware_traps: bool = False  # the built-in SBI handles traps to M-mode (set by --sbi's boot)
    max_instructions: int | None = None
    # instructions a hart runs before the others get a turn: long slices for one hart (less
    # overhead), short ones for several, so a hart spinning on a lock hands over soon
    slice_instructions: int | None = None
    realtime: bool = False
    serial: str = "stdio"  # --serial: stdio, file:PATH or null
    console_input: bool = True  # feed stdin to the UART (when serial is stdio)
    bootargs: str | None = None
    # the RTC's time at power-on, ns since the Unix epoch; None: the host's clock then
    rtc_base_ns: int | None = None
    no_reboot: bool = False  # --no-reboot: a guest's reboot ends the run (status 0)
    trace_path: str | None = None
    drives: list[str] = field(default_factory=list)  # --drive option strings
    netdevs: list[str] = field(default_factory=list)  # --netdev option strings
    iommu: bool = False  # a RISC-V IOMMU in front of the virtio devices (IOMMU_BASE)
    # when virtio-blk requests complete: "host" (when the host's I/O thread is done, so runs
    # differ by a few instructions) or "virtual" (a fixed virtual delay after the notify, so a
    # run with disks is deterministic: the same instructions, the same VM file at a save point)
    io_timing: str = "host"
    tier: str = "interp"  # --tier: interp, or jit (hot blocks compiled to host code, rvh/tier)
    # --tier-cache: where the jit tier keeps compiled blocks between runs ("" the default
    # directory beside numba's cache, "off" none)
    tier_cache: str = ""

    def validate(self) -> None:
        if self.memory < 1 << 20 or self.memory > MAX_MEMORY:
            raise ConfigError(
                f"memory size {format_size(self.memory)} out of range (1 MiB to 16 GiB)"
            )
        if self.memory % 4096:
            raise ConfigError("memory size must be a multiple of 4 KiB")
        if not 1 <= self.harts <= 8:
            raise ConfigError(f"--smp {self.harts}: between 1 and 8 harts")
        from rvh.devices.virtio.options import split_options

        pv = sum("if=pv" in split_options(text) for text in self.drives + self.netdevs)
        if len(self.drives) + len(self.netdevs) - pv > VIRTIO_SLOTS:
            raise ConfigError(f"at most {VIRTIO_SLOTS} virtio devices (--drive, --netdev)")
        if self.io_timing not in IO_TIMINGS:
            raise ConfigError(f"--io-timing {self.io_timing}: host or virtual")
        if pv > PVIO_MAX_DEVICES:
            raise ConfigError(f"at most {PVIO_MAX_DEVICES} pv devices (--drive/--netdev if=pv)")
        if self.tier not in ("interp", "jit"):
            raise ConfigError(f"--tier {self.tier}: interp or jit")
        if self.slice_instructions is None:
            self.slice_instructions = 1_000_000 if self.harts == 1 else 20_000
        if self.slice_instructions < 1:
            raise ConfigError("slice must be at least one instruction")

"""The machine: harts, bus, devices and virtual time, run by one trio task tree.

``Machine.run()`` owns the only nursery.  Devices with work of their own (the console's input,
the virtio queue workers and network backends) are started in it with ``nursery.start``; the
harts run in slices of ``slice_instructions`` in the main task, which serves each kernel exit
(MMIO, wfi, HTIF, firmware traps) and yields to the other tasks between slices.  How the harts
start (bare ELF, built-in SBI, real firmware) is a boot recipe's business (:mod:`rvh.boot`).

A run ends with a status: the guest's exit code, or one of rvh's (:mod:`rvh.errors`) when the
instruction limit is reached, no hart can ever progress (all in wfi with nothing to wake them,
or re-taking an exception at a handler that faults), or the host refuses the console or trace
output.

Time is virtual: each hart's clock advances one nanosecond per instruction, and a hart in wfi
with nothing else to do jumps straight to its next timer deadline, so runs are deterministic and
an idle guest costs no host time.
"""

from __future__ import annotations

import gc
import os
import sys
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import trio

from rvh import config as C
from rvh.boot import (
    BareElf,
    BootRecipe,
    BuiltinSbiBoot,
    FirmwareBoot,
    place_device_tree,
    start_from_boot_rom,
)
from rvh.bus import Bus
from rvh.cpu import layout as L
from rvh.cpu.exits import Exit
from rvh.cpu.hart import Hart
from rvh.cpu.interrupts import NEVER
from rvh.cpu.tables import build_tables
from rvh.devices.console import ConsoleInput, serial_output
from rvh.devices.goldfish_rtc import GoldfishRtc
from rvh.devices.htif import Htif
from rvh.devices.iommu import Iommu
from rvh.devices.plic import Plic
from rvh.devices.pvio import PvioBlk, PvioDevice, PvioHost, PvioNet
from rvh.devices.syscon import SiFiveTestDevice
from rvh.devices.uart16550 import Uart16550
from rvh.devices.virtio import (
    Hub,
    NetdevOptions,
    UdpSocketBackend,
    VirtioBlk,
    VirtioMmioDevice,
    VirtioMmioEmpty,
    VirtioNet,
    default_mac,
    open_netdev,
    parse_drive,
    parse_netdev,
)
from rvh.devices.virtio.blk import open_image
from rvh.devices.virtio.options import DriveOptions
from rvh.dirty import bitmap_words
from rvh.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_DEADLOCK,
    EXIT_EMULATOR_ERROR,
    EXIT_INSN_LIMIT,
    EXIT_INTERRUPTED,
    ConfigError,
    GuestError,
    RvhError,
)
from rvh.isa.causes import Exception_
from rvh.isa.csrs import misa_value
from rvh.loader import LoadedElf
from rvh.trace import CommitLog

if TYPE_CHECKING:
    from rvh.fdt import DeviceTree
    from rvh.gdb.stub import GdbStub
    from rvh.migration import Outgoing
    from rvh.sbi import BuiltinSbi
    from rvh.tier.engine import Tier


@dataclass
class RunResult:
    status: int  # the process exit status
    reason: str  # why the run ended, one line
    instructions: int
    seconds: float

    @property
    def mips(self) -> float:
        return self.instructions / self.seconds / 1e6 if self.seconds > 0 else 0.0


# instructions per kernel call while a device has work in flight, so its completion and
# interrupt reach a polling guest within microseconds of host time
BUSY_SLICE = 20_000
# a hart that executes this many instructions in a row and retires none is re-taking an
# exception at a trap handler whose first instruction faults: it can never make progress
TRAP_LOOP_STEPS = 1_000_000


# machines not freed yet: in use, or dropped and waiting for the collector (a machine's
# objects refer to one another, so only a full collection frees its memory, and Python's
# come rarely in a process whose numba objects are many); past this many, a new machine
# collects first, so that a process that makes machine after machine (the test suite) holds
# a few machines' RAM, not every one's
_MACHINES: weakref.WeakSet[Machine] = weakref.WeakSet()
MACHINES_BEFORE_COLLECT = 4
# ... counted from what the last collection left (machines really in use do not make every
# new one collect: a full collection costs some 60 ms)
_collect_at = [MACHINES_BEFORE_COLLECT]


def _collect_dropped_machines() -> None:
    if len(_MACHINES) >= _collect_at[0]:
        gc.collect()
        _collect_at[0] = len(_MACHINES) + MACHINES_BEFORE_COLLECT


class Machine:
    def __init__(
        self,
        config: C.MachineConfig | None = None,
        output: Callable[[bytes], None] | None = None,
        memory: np.ndarray | None = None,
    ) -> None:
        """``memory``: RAM and ROM as a restored VM file maps them (:mod:`rvh.snapshot`)."""
        _collect_dropped_machines()
        _MACHINES.add(self)
        self.config = config or C.MachineConfig()
        self.config.validate()
        cfg = self.config
        self.bus = Bus(C.RAM_BASE, cfg.memory, C.BOOT_ROM_BASE, C.BOOT_ROM_SIZE, memory)
        self.tables = build_tables()
        # the fixed slots, then the dirty bitmap (rvh/dirty.py): one bit per page of RAM
        self.machine = np.zeros(L.MACHINE_SIZE + bitmap_words(cfg.memory), dtype=np.int64)
        m = self.machine
        m[L.M_RAM_BASE] = C.RAM_BASE
        m[L.M_RAM_SIZE] = cfg.memory
        m[L.M_ROM_BASE] = C.BOOT_ROM_BASE
        m[L.M_ROM_SIZE] = C.BOOT_ROM_SIZE
        m[L.M_ROM_HOST] = self.bus.rom_host
        m[L.M_NUM_HARTS] = cfg.harts
        m[L.M_NS_PER_TICK] = 1_000_000_000 // C.TIMEBASE_HZ // C.NS_PER_INSTRUCTION
        m[L.M_TOHOST] = -1
        m[L.M_FROMHOST] = -1
        m[L.M_MISA] = misa_value(cfg.extensions)
        m[L.M_CLINT_BASE] = C.CLINT_BASE
        m[L.M_FIRMWARE_TRAPS] = 1 if cfg.firmware_traps else 0
        # mtimecmp resets to 0 on QEMU's CLINT, so MTIP is pending until software sets it
        m[L.M_MTIMECMP : L.M_MTIMECMP + L.MAX_HARTS] = 0
        self.harts = [
            Hart(i, m, self.tables, self.bus.memory, self.bus.page_flags, self.bus.decode_cache)
            for i in range(cfg.harts)
        ]
        # Python's writes to code pages move M_CODE_WRITES as the kernel's stores do (rvh/tier)
        self.bus.machine_array = m
        self.tier: Tier | None = None
        if cfg.tier == "jit":
            # imported only here: the interpreter alone never needs LLVM's side of the tier
            from rvh.tier import engine

            self.tier = engine.Tier(
                self.bus.decode_cache,
                m,
                self.bus.page_flags,
                cache=engine.code_cache(cfg.tier_cache),
                compile_after=engine.DEFAULT_COMPILE_AFTER,
                baseline=engine.BASELINE_BY_DEFAULT,
            )
            for hart in self.harts:
                hart.tier = self.tier
        self.commit_log: CommitLog | None = None  # --trace: a Spike-format commit log
        if cfg.trace_path:
            self.commit_log = CommitLog(cfg.trace_path)
            for hart in self.harts:
                hart.trace = self.commit_log.buffer()
        wants_input = False
        if output is None:
            output, wants_input = serial_output(cfg.serial)
        self._output = output
        self._output_failed = False
        self.plic = Plic(cfg.harts, m)
        self.uart = Uart16550(
            self.console_write, lambda level: self.plic.set_level(C.UART0_IRQ, level)
        )
        self.test_device = SiFiveTestDevice(self.power_off, self.request_reset)
        self.bus.attach(C.TEST_BASE, C.TEST_SIZE, self.test_device)
        self.bus.attach(C.UART0_BASE, C.UART0_SIZE, self.uart)
        self.bus.attach(C.PLIC_BASE, C.PLIC_SIZE, self.plic)
        rtc_base = cfg.rtc_base_ns if cfg.rtc_base_ns is not None else time.time_ns()
        self.rtc = GoldfishRtc(
            rtc_base, self._elapsed_ns, lambda level: self.plic.set_level(C.RTC_IRQ, level)
        )
        self.bus.attach(C.RTC_BASE, C.RTC_SIZE, self.rtc)
        self.console: ConsoleInput | None = None
        if wants_input and cfg.console_input:
            self.console = ConsoleInput(
                self.uart.feed,
                lambda: self.uart.rx_space,
                lambda: self.power_off(EXIT_INTERRUPTED, "console: Ctrl-A x"),
                self.notify,
                save=self.request_save,
            )
        self._wake = trio.Event()
        self.virtio: list[VirtioMmioDevice] = []
        self.virtual_io_devices: list[VirtioMmioDevice | PvioBlk] = []
        self.virtual_pv_devices: list[PvioBlk] = []  # of those, the pv disks (kicked by NOTIFY)
        self.pvio: PvioHost | None = None  # the platform I/O extension's devices (if=pv)
        self._attach_virtio()
        self.iommu: Iommu | None = None
        if cfg.iommu:
            self._attach_iommu()
        self.htif: Htif | None = None
        self.elf: LoadedElf | None = None
        self.exit_counts: Counter[str] = Counter()
        self.exit_status: int | None = None
        self.exit_reason = ""
        self.reset_requested = False
        self.reboots = 0
        self.wall_seconds = 0.0
        self.boot_rom_image = b""
        self.firmware_handler: Callable[[Hart], None] | None = None
        self.fdt_blob = b""
        # boot recipes add their own nodes to the board's tree (rvh/boot.py: the hypervisor's)
        self.device_tree_hooks: list[Callable[[DeviceTree], None]] = []
        self.fdt_address = 0
        # [start, end) of the initrd a boot recipe loaded, for /chosen
        self.initrd_range: tuple[int, int] | None = None
        self.sbi: BuiltinSbi | None = None
        self.recipe: BootRecipe | None = None
        self.debugger: GdbStub | None = None  # --gdb: stops the harts between kernel calls
        # a restored machine has no ELF to look at: the recipe's hint as it was when saved
        self.saved_mode_hint: str | None = None
        # --save FILE: where a save goes; save_at: the instruction count (steps) to save at
        # and stop; a save is also requested by SIGUSR1 or Ctrl-A s (the run goes on)
        self.save_path: str | None = None
        self.save_at: int | None = None
        self._save_requested = False
        self.saves: list[SaveReport] = []
        # where the harts' round stood at a save: (target clock, harts still to run), so a
        # restored machine continues the round exactly as the uninterrupted one would
        self.round: tuple[int, list[int]] | None = None
        self._resume_round: tuple[int, list[int]] | None = None
        self.progress: dict[int, tuple[int, int]] = {}
        self.restore_seconds: float | None = None  # how long reading the VM file took
        # --migrate-to: the pre-copy runs beside the harts; once it asks them to stop, the
        # harts' task sends the rest and the run ends (rvh/migration.py)
        self.migrate_to: tuple[str, int] | None = None
        self.migration: Outgoing | None = None
        self._migration_ready = False
        # --migrate-at N: the migration begins once the machine has executed N instructions
        self.migrate_at: int | None = None
        self._migration_pieces = 0  # the outgoing migration's pieces sent, at the last slice
        self._nursery: trio.Nursery | None = None

    # ---- setup --------------------------------------------------------------------------
    def boot(self, recipe: BootRecipe) -> LoadedElf:
        """Load the program(s) and prepare the harts as ``recipe`` says (:mod:`rvh.boot`)."""
        self.recipe = recipe
        self.elf = recipe.apply(self)
        return self.elf

    def load(self, path: str) -> LoadedElf:
        """Boot a bare-metal ELF: the boot ROM jumps to its entry in M-mode."""
        return self.boot(BareElf(path))

    def load_sbi_payload(self, path: str) -> LoadedElf:
        """Boot an S-mode payload on the built-in SBI (``--sbi``)."""
        return self.boot(BuiltinSbiBoot(path))

    def load_firmware(self, firmware: str, kernel: str | None = None) -> LoadedElf:
        """Boot M-mode firmware (e.g. OpenSBI fw_jump) with an optional S-mode payload."""
        return self.boot(FirmwareBoot(firmware, kernel))

    def set_boot(self, start: int) -> None:
        """Start at ``start`` in M-mode from the boot ROM, with nothing loaded by rvh (tests
        that write their code into RAM themselves)."""
        place_device_tree(self, [])
        start_from_boot_rom(self, start)

    def attach_htif(self, elf: LoadedElf) -> None:
        """HTIF for an ELF with a ``tohost`` symbol in RAM: the kernel watches that word."""
        if elf.tohost is None:
            return
        tohost_host = self.bus.host_offset(elf.tohost, 8)
        if tohost_host is not None:
            self.machine[L.M_TOHOST] = tohost_host
            self.bus.page_flags[tohost_host >> L.PAGE_SHIFT] |= L.PAGE_FLAG_WATCH
            self.htif = Htif(self.bus, elf.tohost, elf.fromhost, self.console_write, self.power_off)

    def _attach_virtio(self) -> None:
        """The --drive and --netdev devices in the virtio-mmio slots.  Like QEMU, the first
        device takes the highest slot (0x1000_8000): the device tree lists slots from the
        highest address down, so Linux finds it first (vda, eth0)."""
        cfg = self.config
        hubs: dict[str, Hub] = {}
        devices: list[VirtioMmioDevice] = []
        pv_devices: list[PvioDevice] = []
        for index, text in enumerate(cfg.drives):
            try:
                drive = parse_drive(text)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            if drive.pv:
                pv_devices.append(self._pv_blk(drive, index, len(pv_devices)))
                continue
            slot = C.VIRTIO_SLOTS - 1 - len(devices)
            devices.append(
                VirtioBlk(
                    drive,
                    bus=self.bus,
                    name=f"virtio-blk{index}",
                    irq=self._virtio_irq(slot),
                    log=self._device_log,
                )
            )
        netdevs = self._parse_netdevs()
        for index, options in enumerate(netdevs):
            if options.pv:
                pv_devices.append(self._pv_net(options, hubs, index, len(pv_devices)))
                continue
            slot = C.VIRTIO_SLOTS - 1 - len(devices)
            devices.append(
                VirtioNet(
                    open_netdev(options, hubs),
                    bus=self.bus,
                    mac=options.mac or default_mac(index),
                    name=f"virtio-net{index}",
                    irq=self._virtio_irq(slot),
                    log=self._device_log,
                )
            )
        self.hubs = hubs
        # --io-timing virtual: the devices the run loop serves itself (none with host timing,
        # so the loop's per-exit check is one empty list)
        self.virtual_io_devices = []
        if cfg.io_timing == "virtual":
            for blk in devices:
                if isinstance(blk, VirtioBlk):
                    blk.virtual_timing = True
                    self.virtual_io_devices.append(blk)
        for slot in range(C.VIRTIO_SLOTS):
            position = C.VIRTIO_SLOTS - 1 - slot
            device: object
            if position < len(devices):
                device = devices[position]
            else:
                device = VirtioMmioEmpty(f"virtio-empty{slot}")
            self.bus.attach(C.VIRTIO_BASE + C.VIRTIO_SIZE * slot, C.VIRTIO_SIZE, device)
        self.virtio = devices
        self.pvio = PvioHost(pv_devices, self.bus) if pv_devices else None
        self.virtual_pv_devices = []
        if cfg.io_timing == "virtual":
            for pv_device in pv_devices:
                if isinstance(pv_device, PvioBlk):
                    pv_device.virtual_timing = True
                    self.virtual_pv_devices.append(pv_device)
            self.virtual_io_devices.extend(self.virtual_pv_devices)

    def _pv_common(self, name: str, position: int) -> dict[str, object]:
        """What every pv device gets: its number, name and completion interrupt (an edge on
        PLIC source PVIO_IRQ_BASE + its number: docs/virtio.md, "Paravirtual I/O")."""
        source = C.PVIO_IRQ_BASE + position

        def pulse() -> None:
            self.plic.set_level(source, True)
            self.plic.set_level(source, False)
            self.notify()

        return {
            "bus": self.bus,
            "index": position,
            "name": name,
            "irq": source,
            "raise_irq": pulse,
            "log": self._device_log,
        }

    def _pv_blk(self, drive: DriveOptions, index: int, position: int) -> PvioDevice:
        return PvioBlk(open_image(drive), drive, **self._pv_common(f"pv-blk{index}", position))

    def _pv_net(
        self, options: NetdevOptions, hubs: dict[str, Hub], index: int, position: int
    ) -> PvioDevice:
        return PvioNet(
            open_netdev(options, hubs),
            options.mac or default_mac(index),
            **self._pv_common(f"pv-net{index}", position),
        )

    @property
    def pv_devices(self) -> list[PvioDevice]:
        return self.pvio.devices if self.pvio is not None else []

    def _attach_iommu(self) -> None:
        """A RISC-V IOMMU in front of every virtio device (device_id = its slot).  It resets
        to Bare, so DMA is untranslated until software (the hypervisor) programs it."""
        iommu = Iommu(
            self.bus,
            irq=lambda vector, level: self.plic.set_level(C.IOMMU_IRQ_BASE + vector, level),
            log=self._device_log,
        )
        self.bus.attach(C.IOMMU_BASE, C.IOMMU_SIZE, iommu)
        for position, device in enumerate(self.virtio):
            device.memory.behind_iommu(iommu, C.VIRTIO_SLOTS - 1 - position)
        self.iommu = iommu

    def _iommu_nodes(self, tree: DeviceTree) -> None:
        """The IOMMU's node (the riscv,iommu binding) and each virtio device's ``iommus``."""
        from rvh.fdt import PLIC_PATH, SOC_PATH, virtio_path

        node = tree[SOC_PATH].add(f"iommu@{C.IOMMU_BASE:x}")
        node.prop_str("compatible", "riscv,iommu")
        node.prop_reg((C.IOMMU_BASE, C.IOMMU_SIZE))
        node.prop_phandle("interrupt-parent", tree[PLIC_PATH])
        node.prop_cells("interrupts", *(C.IOMMU_IRQ_BASE + v for v in range(C.IOMMU_VECTORS)))
        node.prop_u32("#iommu-cells", 1)
        for position in range(len(self.virtio)):
            slot = C.VIRTIO_SLOTS - 1 - position
            tree[virtio_path(slot)].prop_cells("iommus", node, slot)

    def _pvio_node(self, tree: DeviceTree) -> None:
        """The platform I/O extension's devices, for software that reads the tree: no
        registers (they are reached through SBI RVH_PVIO), one interrupt each, in device
        order, and the SBI extension id."""
        from rvh.fdt import PLIC_PATH, SOC_PATH
        from rvh.isa.sbi import Extension

        node = tree[SOC_PATH].add("pvio")
        node.prop_str("compatible", "rvh,pvio")
        node.prop_u32("rvh,sbi-extension", Extension.RVH_PVIO)
        node.prop_phandle("interrupt-parent", tree[PLIC_PATH])
        node.prop_cells("interrupts", *(device.irq for device in self.pv_devices))

    def _parse_netdevs(self) -> list[NetdevOptions]:
        """The --netdev options, refusing what would go wrong quietly later: a socket id given
        twice (hub ids repeat on purpose: each NIC on hub N says hub,id=N), two NICs with one
        MAC (each would take the other's frames), and a pcap file written by two NICs (their
        frames would overwrite each other) or naming a disk image."""
        netdevs: list[NetdevOptions] = []
        kinds: dict[str, str] = {}
        macs: dict[bytes, int] = {}
        pcaps = {
            os.path.realpath(parse_drive(text).file): "a --drive image"
            for text in self.config.drives
        }
        for index, text in enumerate(self.config.netdevs):
            try:
                options = parse_netdev(text)
            except ValueError as error:
                raise ConfigError(str(error)) from None
            if options.id in kinds and "socket" in (options.kind, kinds[options.id]):
                raise ConfigError(f"--netdev {text!r}: id {options.id!r} is already in use")
            kinds[options.id] = options.kind
            mac = options.mac or default_mac(index)
            if mac in macs:
                raise ConfigError(
                    f"--netdev {text!r}: MAC {mac.hex(':')} is already virtio-net{macs[mac]}'s"
                )
            macs[mac] = index
            if options.pcap is not None:
                path = os.path.realpath(options.pcap)
                if path in pcaps:
                    raise ConfigError(
                        f"--netdev {text!r}: pcap={options.pcap} is already {pcaps[path]}"
                    )
                pcaps[path] = f"virtio-net{index}'s pcap file"
            netdevs.append(options)
        return netdevs

    def _virtio_irq(self, slot: int) -> Callable[[bool], None]:
        def irq(level: bool) -> None:
            self.plic.set_level(C.VIRTIO_IRQ_BASE + slot, level)
            if level:
                self.notify()

        return irq

    def _device_log(self, message: str) -> None:
        print(f"rvh: {message}", file=sys.stderr)

    def devices_busy(self) -> bool:
        """Device work in flight that will end in an interrupt (the guest may wait for it)."""
        return any(device.busy() for device in self.virtio) or any(
            device.busy() for device in self.pv_devices
        )

    def outside_input_possible(self) -> bool:
        """Can something outside the guest raise an interrupt: typed input, frames from
        another process?"""
        if self.console is not None and self.console.live:
            return True
        for device in [*self.virtio, *self.pv_devices]:
            backend = getattr(device, "backend", None)
            backend = getattr(backend, "inner", backend)
            if isinstance(backend, UdpSocketBackend) and getattr(device, "live", True):
                return True
        return False

    def device_tree(self) -> bytes:
        from rvh.fdt import Board, board_dtb

        isa = "rv64i" + "".join(c for c in "mafdcsuh" if c in self.config.extensions)
        isa += "_zicsr_zifencei_sstc"
        board = Board(
            harts=self.config.harts,
            ram_size=self.config.memory,
            ram_base=C.RAM_BASE,
            isa=isa,
            mmu_type="riscv,sv48",
            timebase_frequency=C.TIMEBASE_HZ,
            plic_ndev=0x60,
            bootargs=self.config.bootargs,
            initrd_start=self.initrd_range[0] if self.initrd_range else None,
            initrd_end=self.initrd_range[1] if self.initrd_range else None,
            extra_nodes=tuple(self.device_tree_hooks)
            + ((self._iommu_nodes,) if self.iommu is not None else ())
            + ((self._pvio_node,) if self.pvio is not None else ()),
        )
        return board_dtb(board)

    # ---- device callbacks ---------------------------------------------------------------
    def power_off(self, status: int, reason: str) -> None:
        if self.exit_status is None:
            self.exit_status = status
            self.exit_reason = reason

    def console_write(self, data: bytes) -> None:
        """Console output (UART, HTIF, SBI).  When the host stops taking it (the reader of a
        pipe went away, a full disk) the run ends: its output would be lost."""
        if self._output_failed:
            return
        try:
            self._output(data)
        except OSError as error:
            self._output_failed = True
            self._output_error(f"--serial {self.config.serial}", error)

    def _output_error(self, what: str, error: OSError) -> None:
        """End the run for output the host refused: quietly for a closed pipe (``rvh run | head``),
        else with one line.  It overrides the guest's own exit: the output is incomplete."""
        if isinstance(error, BrokenPipeError):
            status, reason = EXIT_BROKEN_PIPE, f"{what}: the reader closed the pipe"
        else:
            status, reason = EXIT_EMULATOR_ERROR, f"{what}: cannot write ({error.strerror})"
        if self.exit_status not in (EXIT_BROKEN_PIPE, EXIT_EMULATOR_ERROR):
            self.exit_status, self.exit_reason = status, reason
        self.notify()

    def _write_trace(self, hart: Hart, bus: Bus | None = None) -> None:
        """Drain ``hart``'s trace records to the commit log, if it still takes them."""
        if self.commit_log is None:
            return
        try:
            self.commit_log.drain(hart, bus)
        except OSError as error:
            self._close_trace(error)

    def _close_trace(self, error: OSError | None = None) -> None:
        log, self.commit_log = self.commit_log, None
        if log is None:
            return
        try:
            log.close()
        except OSError as closing:
            error = error or closing
        if error is not None:
            self._output_error(f"--trace {log.path}", error)

    def _elapsed_ns(self) -> int:
        """Virtual time since power-on: the furthest hart's clock."""
        return max(int(hart.state[L.TIME_NS]) for hart in self.harts)

    def request_reset(self) -> None:
        """A guest asked for a system reset (SBI SRST reboot, the syscon's reset value).  With
        --no-reboot the run ends there instead, with status 0 (as QEMU's -no-reboot does)."""
        if self.config.no_reboot:
            self.power_off(0, "reboot (--no-reboot)")
            return
        self.reset_requested = True
        self.reboots += 1

    # ---- running ------------------------------------------------------------------------
    @property
    def instructions(self) -> int:
        return sum(h.instret for h in self.harts)

    @property
    def steps(self) -> int:
        """Instructions executed, retired or trapped: what ``max_instructions`` bounds, so that
        a guest stuck re-taking an exception (mtvec pointing at unmapped memory) stops too."""
        return sum(h.steps for h in self.harts)

    def run_sync(self) -> RunResult:
        """Run the machine to its end.  Ctrl-C and rvh's own errors come out as themselves,
        not wrapped in the exception group of the nursery they crossed."""
        try:
            return trio.run(self.run)
        except BaseExceptionGroup as group:
            if group.subgroup(KeyboardInterrupt) is not None:
                raise KeyboardInterrupt from None
            errors = group.subgroup(RvhError)
            if errors is not None:
                raise next(_leaves(errors)) from None
            raise

    async def run(self) -> RunResult:
        for hart in self.harts:
            # load the compiled kernel now, so the wall time is emulation alone; not while a
            # device access waits to be replayed (a restored hart): that would execute it
            if hart.state[L.MMIO_STATE] not in (L.MMIO_DONE, L.MMIO_FAULT):
                hart.run(0)
        # what exists now (modules, numba's dispatchers, the loaded guest) outlives the run:
        # out of the collector's sight, its full passes no longer walk it while the run
        # allocates (the translating tier's regions: 0.17 s of a Linux boot).  Given back
        # when the run ends: frozen objects are never collected, so a process that runs
        # machine after machine (the test suite) would keep every one it dropped
        gc.freeze()
        start = time.perf_counter()
        try:
            async with trio.open_nursery() as nursery:
                if self.console is not None:
                    await nursery.start(self._serve_device, self.console)
                for device in [*self.virtio, *self.pv_devices]:
                    await nursery.start(self._serve_device, device)
                if self.debugger is not None:
                    await nursery.start(self.debugger.serve)
                self._nursery = nursery
                if self.migrate_to is not None and self.migrate_at is None:
                    await self._start_migration()
                await self._run_harts()
                if self.debugger is not None:
                    status = self.exit_status if self.exit_status is not None else 0
                    await self.debugger.machine_ended(status)
                nursery.cancel_scope.cancel()
        finally:
            self.wall_seconds = time.perf_counter() - start
            gc.unfreeze()
            if self.migration is not None and not self.migration.report.seconds:
                if self.migration.stream is not None:
                    self.migration.stream.socket.close()  # the destination hears the end
                    self._device_log(
                        f"{self.migration.report.address}: the run ended before the "
                        "migration completed"
                    )
            if not self._output_failed:
                try:
                    _flush(self._output)
                except OSError as error:
                    self._output_error(f"--serial {self.config.serial}", error)
            for device in self.virtio:
                device.close()
            for pv_device in self.pv_devices:
                pv_device.close()
            for hart in self.harts:
                self._write_trace(hart, self.bus)
            self._close_trace()
        status = self.exit_status if self.exit_status is not None else 0
        return RunResult(status, self.exit_reason, self.instructions, self.wall_seconds)

    async def _serve_device(
        self, device: object, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """A device's task.  A device that fails (a bug, or the host refusing something)
        ends the run with an emulator-error status and one line saying why, instead of
        tearing the machine down with a traceback."""
        try:
            await device.serve(task_status=task_status)  # type: ignore[attr-defined]
        except Exception as error:  # noqa: BLE001 - reported, and the run ends cleanly
            name = getattr(device, "name", type(device).__name__)
            self.power_off(EXIT_EMULATOR_ERROR, f"{name} failed: {type(error).__name__}: {error}")
            self.notify()
            try:
                task_status.started()
            except RuntimeError:
                pass  # it had started

    async def _run_harts(self) -> None:
        """Run the harts in rounds: each round moves every running hart's clock to the same
        target, one slice past the slowest clock, so harts stay within a slice of each other
        whatever their MMIO exits; deterministic because the order is fixed."""
        cfg = self.config
        limit = cfg.max_instructions
        smp = len(self.harts) > 1
        progress = self.progress
        for hart in self.harts:
            progress.setdefault(hart.hartid, (hart.steps, hart.instret))
        debugger = self.debugger  # --gdb: a stop it asks for ends the round at the next exit
        while self.exit_status is None:
            resume, self._resume_round = self._resume_round, None
            if resume is not None:
                target, hartids = resume
                running = [self.harts[i] for i in hartids]
            else:
                if debugger is not None and debugger.stop_requested:
                    await debugger.park()
                    continue
                if self.reset_requested:
                    self.reset_requested = False
                    self._reset()
                self._wake_sleepers()
                running = [h for h in self.harts if not h.state[L.WFI] and not h.state[L.HALTED]]
                if not running:
                    await self._idle()
                    await trio.lowlevel.checkpoint()
                    continue
                target = min(int(h.state[L.TIME_NS]) for h in running) + int(
                    cfg.slice_instructions or 1
                )
            for position, hart in enumerate(running):
                while hart.state[L.TIME_NS] < target:
                    if self._save_due():
                        self.round = (target, [h.hartid for h in running[position:]])
                        await self._save()
                        if self.exit_status is not None:
                            return
                    if self.migrate_at is not None and self.steps >= self.migrate_at:
                        self.migrate_at = None
                        await self._start_migration()
                    if self._migration_ready:
                        self.round = (target, [h.hartid for h in running[position:]])
                        await self._finish_migration()
                        return
                    now = int(hart.state[L.TIME_NS])
                    budget = target - now
                    if self.virtual_io_devices:
                        due = self._virtual_io(now)
                        if due is not None:
                            budget = min(budget, due - now)  # stop where the next one completes
                    busy = self.devices_busy()
                    if busy:
                        budget = min(budget, BUSY_SLICE)  # let completions in soon
                    if limit is not None:
                        budget = min(budget, limit - self.steps)
                        if budget <= 0:
                            self.power_off(EXIT_INSN_LIMIT, f"instruction limit of {limit} reached")
                            return
                    # a save point splits a kernel call the uninterrupted run makes whole: the
                    # extra budget exit is not counted, so --stats agree across a restore
                    save_split = False
                    if self.save_at is not None and self.save_at > self.steps:
                        save_split = self.save_at - self.steps < budget
                        budget = min(budget, self.save_at - self.steps)
                    reason = hart.run(budget)
                    if self.migration is not None and self.migration.sending:
                        self._migration_pieces = await self.migration.pace(self._migration_pieces)
                    if not (save_split and reason == Exit.BUDGET):
                        self.exit_counts[reason.name.lower()] += 1
                    device = self._serve_exit(hart, reason)
                    if isinstance(device, VirtioMmioDevice) and device.virtual_timing:
                        device.virtual_kick(int(hart.state[L.TIME_NS]))
                    if self.exit_status is not None or self.reset_requested:
                        return await self._run_harts() if self.reset_requested else None
                    kicked = self.pvio is not None and self.pvio.kicked
                    if kicked and self.virtual_pv_devices:
                        for pv_device in self.virtual_pv_devices:
                            pv_device.virtual_kick(int(hart.state[L.TIME_NS]))
                    if busy or kicked or isinstance(device, VirtioMmioDevice):
                        if kicked:
                            self.pvio.kicked = False  # type: ignore[union-attr]
                        # a queue notify (or I/O in flight): give the device tasks a turn
                        await trio.lowlevel.checkpoint()
                    if hart.state[L.WFI] or hart.state[L.HALTED]:
                        break
                    if debugger is not None and debugger.stop_requested:
                        break
                if debugger is not None and debugger.stop_requested:
                    break
                if hart.instret != progress[hart.hartid][1]:
                    progress[hart.hartid] = (hart.steps, hart.instret)
                elif hart.steps - progress[hart.hartid][0] >= TRAP_LOOP_STEPS:
                    if self._trap_loop(hart):
                        return
                if smp:
                    # another hart ran: its stores may have hit this reservation, and rvh does
                    # not track them, so every other hart's LR/SC reservation is dropped (an SC
                    # may always fail; the slices are long enough for LR/SC loops to succeed)
                    for other in self.harts:
                        if other is not hart:
                            other.state[L.RESERVATION] = -1
            await trio.lowlevel.checkpoint()

    def step_instruction(self, hart: Hart) -> None:
        """Execute one instruction on ``hart`` for the debugger, serving the kernel exits it
        causes (a device access exits, then replays the instruction)."""
        for _ in range(3):
            reason = hart.run(1)
            self.exit_counts[reason.name.lower()] += 1
            self._serve_exit(hart, reason)
            if reason != Exit.MMIO or self.exit_status is not None:
                return

    # ---- saving (rvh/snapshot.py) -------------------------------------------------------
    def request_save(self, *, from_signal: bool = False) -> None:
        """SIGUSR1 or Ctrl-A s: save before the next kernel call and go on.  A signal handler
        only sets the flag (it may run inside trio's own code); the harts look at it before
        each kernel call, and a machine idling in real time sees it when it wakes."""
        if self.save_path is None:
            if not from_signal:
                self._device_log("no --save FILE given: nothing saved")
            return
        self._save_requested = True
        if not from_signal:
            self.notify()

    def _save_due(self) -> bool:
        return self._save_requested or (self.save_at is not None and self.steps >= self.save_at)

    async def _save(self) -> None:
        """Write the VM file: first let the devices finish the requests in flight (their
        completions land in RAM and raise their interrupts), so none is lost or redone."""
        from rvh.snapshot import SnapshotWriteError, save_machine

        while self.devices_busy():
            await trio.sleep(0.0005)
        at_end = self.save_at is not None and self.steps >= self.save_at
        self._save_requested = False
        assert self.save_path is not None
        try:
            self.saves.append(save_machine(self, self.save_path))
        except SnapshotWriteError as error:
            self.power_off(EXIT_EMULATOR_ERROR, error.message)
            return
        if at_end:
            self.save_at = None
            self.power_off(0, f"saved to {self.save_path} at instruction {self.steps}")

    # ---- migrating (rvh/migration.py) ---------------------------------------------------
    async def _start_migration(self) -> None:
        """Connect to the destination and start the pre-copy beside the harts."""
        from rvh.migration import Outgoing

        assert self.migrate_to is not None and self._nursery is not None
        self.migration = Outgoing(self, self.migrate_to)
        await self._nursery.start(self.migration.precopy)

    def stop_for_migration(self, outgoing: Outgoing) -> None:
        """The pre-copy converged: stop before the next kernel call and send the rest."""
        self._migration_ready = True
        self.notify()

    def migration_failed(self, why: str) -> None:
        assert self.migrate_to is not None
        host, port = self.migrate_to
        self.power_off(EXIT_EMULATOR_ERROR, f"--migrate-to tcp:{host}:{port}: {why}")
        self.notify()

    async def _finish_migration(self) -> None:
        assert self.migration is not None
        while self.devices_busy():
            await trio.sleep(0.0005)
        try:
            await self.migration.finish()
        except (OSError, trio.BrokenResourceError) as error:
            self.migration_failed(f"the destination went away ({error})")
            return
        self.power_off(0, self.migration.report.line())

    def _reset(self) -> None:
        """System reset (test device 0x7777, SBI SRST reboot): every hart restarts.  The RTC
        keeps its time (the harts' clocks start again from 0)."""
        self.rtc.offset_ns += self._elapsed_ns()
        if self.recipe is not None:
            self.recipe.reset(self)
        else:
            for hart in self.harts:
                hart.reset(C.BOOT_ROM_BASE)

    def _trap_loop(self, hart: Hart) -> bool:
        """``hart`` executed TRAP_LOOP_STEPS instructions and retired none: each one trapped,
        so its trap handler's first instruction traps to itself and no interrupt can get it
        out (an interrupt would enter a handler that retires).  End the run, the way a
        deadlock ends it, unless another hart still runs and might repair its memory."""
        others = [
            h for h in self.harts if h is not hart and not h.state[L.HALTED] and not h.state[L.WFI]
        ]
        if others:
            return False
        cause = int(hart.state[L.LAST_CAUSE])
        try:
            name = Exception_(cause).name.lower().replace("_", " ")
        except ValueError:
            name = f"cause {cause}"
        message = (
            f"trap loop: hart {hart.hartid} retired nothing in {TRAP_LOOP_STEPS:,} instructions, "
            f"re-taking {name} at pc {hart.pc & (2**64 - 1):#x} in {hart.mode}-mode"
        )
        self.power_off(EXIT_DEADLOCK, self._with_hint(message))
        return True

    def _with_hint(self, message: str) -> str:
        """``message`` and, when the program looks meant for another boot recipe, why."""
        hint = self.recipe.mode_hint() if self.recipe is not None else None
        hint = hint or self.saved_mode_hint
        return f"{message}; {hint}" if hint else message

    def _wake_sleepers(self) -> None:
        """Harts in wfi keep pace with the others' clocks and wake when an interrupt is due."""
        from rvh.cpu.interrupts import any_pending_enabled

        now = max(int(h.state[L.TIME_NS]) for h in self.harts)
        for hart in self.harts:
            if hart.state[L.WFI] and not hart.state[L.HALTED]:
                hart.state[L.TIME_NS] = now
                if any_pending_enabled(hart.state, self.machine, now):
                    hart.state[L.WFI] = 0

    def _serve_exit(self, hart: Hart, reason: Exit) -> object:
        """Act on a kernel exit; returns the device an MMIO exit went to."""
        self._write_trace(hart)
        if reason == Exit.BUDGET:
            return None
        if reason == Exit.MMIO:
            return self.bus.complete_mmio(hart.state)
        elif reason == Exit.HTIF:
            if self.htif is not None:
                self.htif.service()
        elif reason == Exit.FIRMWARE:
            if self.firmware_handler is None:
                raise GuestError("trap to M-mode with no firmware to handle it")
            self.firmware_handler(hart)
        elif reason == Exit.WFI:
            pass  # the hart sleeps; _idle advances time when every hart does
        elif reason == Exit.TRACE_FULL:
            pass
        elif reason == Exit.BREAKPOINT or reason == Exit.WATCHPOINT:
            if self.debugger is not None:
                self.debugger.hit(hart, reason)
            else:
                hart.state[L.DEBUG_WATCH_HIT] = 0
        return None

    def _virtual_io(self, now: int) -> int | None:
        """Virtual I/O timing: complete what is due by ``now`` (a hart's clock, at an
        instruction boundary); returns when the next completion is due."""
        for device in self.virtual_io_devices:
            device.virtual_complete(now)
        return self._virtual_io_due()

    def _virtual_io_due(self) -> int | None:
        dues = [device.virtual_due() for device in self.virtual_io_devices]
        return min((due for due in dues if due is not None), default=None)

    def notify(self) -> None:
        """A device raised an interrupt or finished work: wake an idle machine."""
        self._wake.set()

    async def _idle(self) -> None:
        """Every running hart is in wfi with nothing pending.

        Virtual time (the default): jump the clocks to the earliest timer deadline, unless a
        device has work in flight (then wait for it without advancing time) or something
        outside the machine can wake the guest (console input, a UDP peer: then wait in real
        time, as below).  With ``--realtime``: sleep in trio until the deadline or a device
        event, and advance the clocks by the time slept.  When nothing at all can wake the
        harts, stop with a deadlock status."""
        from rvh.cpu.interrupts import any_pending_enabled, next_deadline

        waiting = [h for h in self.harts if h.state[L.WFI] and not h.state[L.HALTED]]
        if not waiting:
            self.power_off(0, "all harts stopped")
            return
        earliest = int(NEVER)
        for hart in waiting:
            now = int(hart.state[L.TIME_NS])
            if any_pending_enabled(hart.state, self.machine, now):
                hart.state[L.WFI] = 0
                return
            earliest = min(earliest, int(next_deadline(hart.state, self.machine, now)))
        due = self._virtual_io_due()
        if due is not None:
            # a completion due in virtual time is a deadline like a timer's: the clocks jump
            # until the slowest waiting hart reaches it, then the next round completes it
            slowest = min(int(hart.state[L.TIME_NS]) for hart in waiting)
            earliest = min(earliest, max(due - slowest, 0))
        busy = self.devices_busy()
        live = self.outside_input_possible()
        if earliest >= NEVER and not (busy or live):
            self.power_off(
                EXIT_DEADLOCK,
                self._with_hint(
                    "deadlock: every hart waits in wfi for an interrupt nothing can raise"
                ),
            )
            return
        self._wake = trio.Event()
        if self.config.realtime or (live and not busy):
            # in real time: sleep until the deadline or an event; with a peer outside the
            # machine (the console, a UDP link) waiting matters, since a jump of virtual
            # time would make every timeout expire before the other side could answer
            timeout = earliest / 1e9 if earliest < NEVER else float("inf")
            start = time.perf_counter()
            with trio.move_on_after(timeout):
                await self._wake.wait()
            advance = min(int((time.perf_counter() - start) * 1e9), earliest)
        elif busy or earliest >= NEVER:
            await self._wake.wait()
            advance = 0
        else:
            advance = earliest
        for hart in self.harts:
            hart.state[L.TIME_NS] += advance
        for hart in waiting:
            hart.state[L.WFI] = 0  # re-examined by the next round

    def retired_by_level(self) -> dict[str, int]:
        """Instructions retired in M, HS, VS, VU and U, summed over the harts."""
        totals = dict.fromkeys(L.LEVEL_NAMES, 0)
        for hart in self.harts:
            for level, count in hart.retired_by_level().items():
                totals[level] += count
        return totals

    def hypervisor_by_vmid(self) -> dict[int, int]:
        """HS-mode instructions by the VMID whose exit they handled, summed over the harts."""
        totals: dict[int, int] = {}
        for hart in self.harts:
            for vmid, count in hart.hypervisor_by_vmid().items():
                totals[vmid] = totals.get(vmid, 0) + count
        return dict(sorted(totals.items()))

    def statistics(self) -> dict[str, object]:
        return {
            "instructions": self.instructions,
            "seconds": self.wall_seconds,
            "exits": dict(self.exit_counts),
            "mmio": dict(self.bus.mmio_counts),
            "tlb_misses": sum(int(h.state[L.TLB_MISSES]) for h in self.harts),
            "exceptions": sum(int(h.state[L.EXCEPTIONS]) for h in self.harts),
            "interrupts": sum(int(h.state[L.INTERRUPTS]) for h in self.harts),
            "retired_by_level": self.retired_by_level(),
            "hypervisor_by_vmid": self.hypervisor_by_vmid(),
            "uart": self.uart.statistics(),
            "plic": self.plic.statistics(),
            "virtio": {device.name: device.statistics() for device in self.virtio},
            **(
                {"pvio": {device.name: device.statistics() for device in self.pv_devices}}
                if self.pvio is not None
                else {}
            ),
            **({"iommu": self.iommu.statistics()} if self.iommu is not None else {}),
            "hubs": {name: hub.statistics() for name, hub in self.hubs.items()},
            **({"tier": self.tier.statistics()} if self.tier is not None else {}),
        }


@dataclass
class SaveReport:
    """One VM file written: where, at which instruction, how big, how long it took."""

    path: str
    instructions: int
    file_bytes: int
    stored_bytes: int
    seconds: float


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _flush(output: Callable[[bytes], None]) -> None:
    flush = getattr(output, "flush", None)
    if flush is not None:
        flush()

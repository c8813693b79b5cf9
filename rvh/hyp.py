"""Booting rvh's hypervisor (``rvh run --hyp --guest SPEC [--guest SPEC ...]``).

The hypervisor (``firmware/hyp``, C, HS-mode) is an ordinary S-mode payload of the SBI firmware.
What it runs is described to it the way a real machine describes things, in the device tree:
rvh places each VM's RAM in host RAM (above ``HYPERVISOR_RESERVED``, 2 MiB aligned so the
G-stage can use megapages), loads the guest ELF there at its own guest-physical addresses (or
a Linux Image at RAM + 2 MiB, with ``initrd=`` where QEMU puts an initrd), writes the VM's own
device tree (a QEMU-virt-like board) into that RAM, and adds to the host
tree a ``/hypervisor`` node with one ``vm@N`` child per VM:

    reg = <host-physical base, size>;   rvh,guest-base = <0x80000000>;
    rvh,entry = <guest entry>;   rvh,dtb = <guest-physical device tree>;
    rvh,vcpus = <n>;   rvh,virt = "hw" | "trap" | "pv";   rvh,name = "vm0";

Nothing here is private to rvh: the same tree, images and hypervisor run on QEMU
(``-dtb``, ``-device loader``), which is how the hypervisor is checked to be real.

A guest SPEC is QEMU-style suboptions: ``PATH[,virt=hw|trap|pv][,mem=SIZE][,vcpus=N]
[,initrd=PATH][,append=TEXT][,drive=PATH[,readonly=on]]...[,netdev=ID[,mac=MAC]]...
[,io=emulated|pv|passthrough][,spec=1.9.1]``;
``append`` takes the rest of its value up to the next known key, so a kernel command line may
contain commas.  ``drive=`` and ``netdev=`` may repeat (one virtio device each, in the VM's slots
from the highest down, drives first, as natively); ``readonly=`` applies to the drive before it,
``mac=`` to the NIC before it.

A VM's disks and NICs are machine virtio-mmio devices that rvh attaches for it
(:func:`attach_vm_devices`) and the hypervisor drives itself; the host tree lists each VM's
machine slots (``rvh,virtio-slots``), and the hypervisor emulates a virtio-mmio device in the
same slot numbers of the VM's board, forwarding requests (docs/virtio.md, "Under the hypervisor").
With ``io=pv`` they are machine pv devices of the platform I/O extension instead (``if=pv``,
listed as ``rvh,pv-devices``), and the VM gets the extension from the hypervisor's SBI
(firmware/hyp/pvio.c).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rvh import config as C
from rvh.config import MachineConfig
from rvh.errors import ConfigError, LoadError
from rvh.fdt import Board, DeviceTree, board_dtb, parse_dtb
from rvh.isa import sbi
from rvh.loader import LoadedElf, Segment, place_segments, read_kernel, read_regular_file

GUEST_RAM_BASE = C.RAM_BASE  # every VM sees its RAM where QEMU's virt board has it
HYPERVISOR_RESERVED = 64 << 20  # firmware (2 MiB) + the hypervisor's image, stacks and tables
VM_ALIGN = 2 << 20  # G-stage megapages
HOST_TREE_RESERVED = 2 << 20  # the host device tree goes in the top 2 MiB (QEMU's place for it)
VM_IMAGE_OFFSET = 2 << 20  # a Linux Image in a VM: at RAM + 2 MiB, where an SBI payload goes
DEFAULT_VM_MEMORY = 64 << 20
MAX_VMS = 8
MAX_VCPUS = 8
VIRT_MODES = ("hw", "trap", "pv")
IO_PATHS = ("emulated", "pv", "passthrough")
# ---- the stats page: what the hypervisor counts, one 512-byte slot of u64 words per VM -----
# The hypervisor (firmware/hyp/stats.c) writes it, rvh run --stats reads it; the C side takes the
# layout from the header hyp_stats_header() writes, so the two cannot drift apart.
VM_COUNTERS = (
    "exits",  # every trap from the guest into the hypervisor
    "ecall",  # SBI calls (an ecall from the guest's (virtual) S-mode)
    "mmio",  # faults on guest-physical device addresses emulated as device accesses
    "wfi",
    "csr",  # hw: virtual-instruction faults on CSR instructions; trap: CSR accesses emulated
    "virtual_instruction",
    "illegal",  # illegal instructions injected into the guest
    "injected_faults",  # access faults injected for guest-physical addresses with nothing there
    "interrupts",  # host interrupts taken while the guest ran (slice timer, trap-mode timer)
    "console_bytes",
    # trap mode (the guest kernel in U-mode, shadow page tables)
    "sret",  # sret emulated
    "sfence",  # sfence.vma emulated
    "shadow_fill",  # shadow PTEs made from the guest's own tables after a page fault
    "shadow_flush_full",  # every shadow table of the VM emptied (sfence.vma without address...)
    "shadow_flush_page",  # sfence.vma with an address: that region's shadow entries only
    "shadow_new_set",  # shadow roots started for a guest satp (ASID + root) not in the cache
    "shadow_set_reused",  # a guest satp switch that found its shadow roots still cached
    "forwarded",  # exceptions forwarded into the guest (its traps, refused accesses)
    "injected_interrupts",  # virtual interrupts delivered to the guest
    # virtual I/O (hw VMs)
    "virtio_mmio",  # guest accesses to its virtio-mmio registers (each one an exit)
    "plic_mmio",  # guest accesses to its virtual PLIC
    "io_requests",  # descriptor chains forwarded to a machine device (or frames delivered)
    "io_copies",  # buffers copied between the VM's RAM and the hypervisor's bounce buffers
    "io_bytes",  # bytes those copies moved
    "io_irqs",  # virtual interrupts raised (device InterruptStatus set)
    "io_errors",  # malformed rings (device needs reset) and requests refused
    "iommu_faults",  # DMA of its passthrough devices the IOMMU refused (io=passthrough)
    "io_notifies",  # io=pv: NOTIFY calls of the platform I/O extension (one exit per batch)
    # several host harts (--smp)
    "kicks",  # IPIs to other host harts for its vCPUs (an interrupt, a start, its end)
    "remote_fences",  # other host harts made to fence for it (remote sfence.vma, fence.i)
)
# trap mode: CSR emulation by CSR (C takes the numbers from rvh/encoding.h by these names)
TRAP_CSRS = (
    "sstatus", "sie", "stvec", "scounteren", "senvcfg", "sscratch", "sepc", "scause", "stval",
    "sip", "stimecmp", "satp",
)  # fmt: skip
SBI_EXTENSIONS = (
    "legacy", "BASE", "TIME", "IPI", "RFENCE", "HSM", "SRST", "DBCN", "STA", "pv", "other"
)  # fmt: skip
# pv VMs: calls of rvh's pv extension by function (rvh/isa/sbi.py's RvhPvFunction, in order)
PV_FUNCTIONS = tuple(function.name.lower() for function in sbi.RvhPvFunction)
SCAUSE_COUNT = 24
STATS_SLOT_WORDS = 128
STATS_STATE, STATS_STATUS, STATS_MODE = 0, 1, 2  # words of a slot before the counters
STATS_COUNTERS = 3
STATS_SBI = STATS_COUNTERS + len(VM_COUNTERS)
STATS_SCAUSE = STATS_SBI + len(SBI_EXTENSIONS)
STATS_CSR = STATS_SCAUSE + SCAUSE_COUNT  # then one word per TRAP_CSRS name, and "other"
STATS_PV = STATS_CSR + len(TRAP_CSRS) + 1  # pv VMs: one word per PV_FUNCTIONS name
# with --smp: the times a vCPU of the VM was given host hart h, one word per host hart
MAX_HOST_HARTS = 8
STATS_HART_SLICES = STATS_PV + len(PV_FUNCTIONS)
STATS_SIZE = 8 * STATS_SLOT_WORDS * 8  # MAX_VMS slots
STATS_ADDRESS = C.RAM_BASE + HYPERVISOR_RESERVED - STATS_SIZE  # the top of the hypervisor's area
VM_STATES = ("absent", "running", "shut down")
assert STATS_HART_SLICES + MAX_HOST_HARTS <= STATS_SLOT_WORDS

_KEYS = (
    "virt", "mem", "vcpus", "initrd", "append", "drive", "readonly", "netdev", "mac", "io", "spec",
)  # fmt: skip
# spec=: the privileged spec the guest kernel was written for; a trap VM can emulate 1.9.1's
# (firmware/hyp/legacy.c)
PRIVILEGED_SPECS = ("current", "1.9.1")


def hypervisor_elf() -> Path:
    """The built hypervisor (``make guests`` builds it); ``RVH_HYPERVISOR`` overrides."""
    override = os.environ.get("RVH_HYPERVISOR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "firmware" / "build" / "hyp" / "hyp.elf"


@dataclass
class VmDrive:
    """A ``drive=PATH[,readonly=on]`` of a VM."""

    path: str
    readonly: bool = False


_REPEATABLE = ("drive", "readonly", "netdev", "mac")


@dataclass
class GuestSpec:
    """One ``--guest`` option."""

    path: str
    virt: str = "hw"
    memory: int = DEFAULT_VM_MEMORY
    vcpus: int = 1
    initrd: str | None = None
    append: str | None = None
    drives: list[VmDrive] = field(default_factory=list)
    netdevs: list[str] = field(default_factory=list)
    # mac=MAC after a netdev=ID: that NIC's address (by its index in netdevs); else the default
    macs: dict[int, str] = field(default_factory=dict)
    io: str = "emulated"
    spec: str = "current"
    virt_given: bool = False
    # the machine virtio-mmio slots of its devices, drives then NICs (attach_vm_devices)
    machine_slots: list[int] | None = None
    # io=pv: the machine's pv devices (platform I/O extension) that are the VM's, in its order
    machine_pv_devices: list[int] | None = None

    @classmethod
    def parse(cls, text: str) -> GuestSpec:
        """Parse a SPEC; a bad one raises :class:`ConfigError` with one line."""
        parts = text.split(",")
        if not parts[0]:
            raise ConfigError(f"--guest {text!r}: starts with no guest file")
        spec = cls(parts[0])
        seen: set[str] = set()
        index = 1
        while index < len(parts):
            key, sep, value = parts[index].partition("=")
            index += 1
            if not sep or key not in _KEYS:
                raise ConfigError(
                    f"--guest: unknown suboption {parts[index - 1]!r} (known: {', '.join(_KEYS)})"
                )
            if key in seen and key not in _REPEATABLE:
                raise ConfigError(f"--guest: {key}= given twice")
            seen.add(key)
            if key == "append":  # up to the next known key: a command line may hold commas
                while index < len(parts) and parts[index].partition("=")[0] not in _KEYS:
                    value += "," + parts[index]
                    index += 1
            spec._set(key, value)
        return spec

    def _set(self, key: str, value: str) -> None:
        if key == "virt":
            if value not in VIRT_MODES:
                raise ConfigError(f"--guest: virt={value}: use one of {', '.join(VIRT_MODES)}")
            self.virt, self.virt_given = value, True
        elif key == "mem":
            self.memory = C.parse_size(value)
            if self.memory < VM_ALIGN or self.memory % VM_ALIGN:
                raise ConfigError(f"--guest mem={value}: a multiple of 2 MiB, at least 2 MiB")
        elif key == "vcpus":
            if not value.isdigit() or not 1 <= int(value) <= MAX_VCPUS:
                raise ConfigError(f"--guest vcpus={value}: a number from 1 to {MAX_VCPUS}")
            self.vcpus = int(value)
        elif key == "readonly":
            if value not in ("on", "off"):
                raise ConfigError(f"--guest readonly={value}: on or off")
            if not self.drives:
                raise ConfigError("--guest readonly= goes after the drive=PATH it is for")
            self.drives[-1].readonly = value == "on"
        elif key == "io":
            if value not in IO_PATHS:
                raise ConfigError(f"--guest io={value}: use one of {', '.join(IO_PATHS)}")
            self.io = value
        elif key == "spec":
            if value not in PRIVILEGED_SPECS:
                raise ConfigError(f"--guest spec={value}: use one of {', '.join(PRIVILEGED_SPECS)}")
            self.spec = value
        elif key == "initrd":
            self.initrd = value
        elif key == "append":
            self.append = value
        elif key == "drive":
            if not value:
                raise ConfigError("--guest drive= needs an image file")
            self.drives.append(VmDrive(value))
        elif key == "netdev":
            if not value or "," in value:
                raise ConfigError(f"--guest netdev={value!r}: a --netdev id or a hub name")
            self.netdevs.append(value)
        elif key == "mac":
            from rvh.devices.virtio.options import parse_mac

            if not self.netdevs:
                raise ConfigError("--guest mac= goes after the netdev=ID it is for")
            if len(self.netdevs) - 1 in self.macs:
                raise ConfigError(f"--guest mac={value}: a second mac= for one netdev=")
            try:
                parse_mac(value)
            except ValueError as error:
                raise ConfigError(f"--guest {error}") from None
            self.macs[len(self.netdevs) - 1] = value

    @property
    def device_count(self) -> int:
        return len(self.drives) + len(self.netdevs)


@dataclass
class VmPlan:
    """Where one VM lives: its host-physical RAM, its image and its device tree."""

    index: int
    spec: GuestSpec
    host_base: int
    elf: LoadedElf
    dtb: bytes = b""
    dtb_address: int = 0  # guest-physical
    name: str = field(default="")
    initrd: LoadedElf | None = None  # initrd=, at its guest-physical place

    def host(self, guest_physical: int) -> int:
        return self.host_base + (guest_physical - GUEST_RAM_BASE)


def host_memory_needed(specs: list[GuestSpec]) -> int:
    """Host RAM for the hypervisor, these VMs and the host device tree."""
    return HYPERVISOR_RESERVED + sum(spec.memory for spec in specs) + HOST_TREE_RESERVED


def plan_vms(specs: list[GuestSpec], machine_memory: int, has_h: bool) -> list[VmPlan]:
    """Check every guest and give each VM its place in host RAM; one-line errors."""
    if not specs:
        raise ConfigError("--hyp needs at least one --guest")
    if len(specs) > MAX_VMS:
        raise ConfigError(f"--hyp runs at most {MAX_VMS} VMs, got {len(specs)}")
    for spec in specs:
        if spec.virt == "hw" and not has_h:
            if spec.virt_given:
                raise ConfigError(
                    f"--guest {spec.path}: virt=hw needs a hart with the H extension "
                    "(drop --cpu rv64,h=off, or use virt=trap)"
                )
            spec.virt = "trap"  # the default follows the hart: hw with H, trap without
        if spec.spec != "current" and spec.virt != "trap":
            raise ConfigError(
                f"--guest {spec.path}: spec={spec.spec} needs virt=trap (the hypervisor emulates "
                "that privileged interface on the hart)"
            )
        if spec.virt != "hw" and spec.io == "passthrough" and spec.device_count:
            raise ConfigError(
                f"--guest {spec.path}: io=passthrough needs virt=hw: a {spec.virt} VM has no "
                "G-stage table for the IOMMU to translate its device's DMA with (use io=emulated)"
            )
        if spec.initrd is not None and not Path(spec.initrd).is_file():
            raise ConfigError(f"--guest initrd={spec.initrd}: no such file")
        for drive in spec.drives:
            if not Path(drive.path).is_file():
                raise ConfigError(f"--guest drive={drive.path}: no such file")
    plans = []
    host = C.RAM_BASE + HYPERVISOR_RESERVED
    for index, spec in enumerate(specs):
        # an ELF at its own addresses, a Linux Image where an SBI payload goes (0x8020_0000,
        # as QEMU places it above the firmware): the hypervisor is the VM's SBI
        elf = read_kernel(spec.path, GUEST_RAM_BASE + VM_IMAGE_OFFSET)
        ram_end = GUEST_RAM_BASE + spec.memory
        for segment in elf.segments:
            end = segment.address + segment.memory_size
            if segment.address < GUEST_RAM_BASE or end > ram_end:
                raise LoadError(
                    f"{spec.path}: segment [{segment.address:#x}, {end:#x}) does not fit in the "
                    f"VM's RAM [{GUEST_RAM_BASE:#x}, {ram_end:#x}) (try a larger mem=)"
                )
        if not GUEST_RAM_BASE <= elf.entry < ram_end:
            raise LoadError(f"{spec.path}: entry point {elf.entry:#x} is outside the VM's RAM")
        plan = VmPlan(index, spec, host, elf, name=f"vm{index}")
        if spec.initrd is not None:
            plan.initrd = _vm_initrd(spec, elf)
        plans.append(plan)
        host += spec.memory
    needed = host_memory_needed(specs)
    if needed > machine_memory:
        raise ConfigError(
            f"the VMs need {needed >> 20} MiB of host RAM (the hypervisor's "
            f"{HYPERVISOR_RESERVED >> 20} MiB included) but the machine has "
            f"{machine_memory >> 20} MiB: give --memory {-(-needed // (1 << 20))}M or more"
        )
    return plans


def _vm_initrd(spec: GuestSpec, kernel: LoadedElf) -> LoadedElf:
    """``initrd=``: where QEMU 7.2 puts it (rvh.boot.kernel_and_initrd), the kernel's start plus
    half the VM's RAM or 128 MiB, whichever is less; it must end below the VM's device tree."""
    from rvh.boot import INITRD_OFFSET_MAX

    assert spec.initrd is not None
    data = read_regular_file(spec.initrd, "initrd")
    start = min(segment.address for segment in kernel.segments)
    start += min(spec.memory // 2, INITRD_OFFSET_MAX)
    end = start + len(data)
    limit = GUEST_RAM_BASE + spec.memory - HOST_TREE_RESERVED  # the VM's tree: its top 2 MiB
    if end > limit:
        raise LoadError(
            f"--guest initrd={spec.initrd}: {len(data)} bytes at {start:#x} do not fit below the "
            f"VM's device tree at {limit:#x} (try a larger mem=)"
        )
    if kernel.end > start:
        raise LoadError(f"--guest {spec.path}: the kernel reaches the initrd at {start:#x}")
    return LoadedElf(spec.initrd, start, [Segment(start, data, len(data))])


def guest_device_tree(plan: VmPlan) -> bytes:
    """The VM's board: QEMU virt's layout, its own RAM and vCPUs, harts without H."""
    spec = plan.spec
    board = Board(
        harts=spec.vcpus,
        ram_size=spec.memory,
        ram_base=GUEST_RAM_BASE,
        # every mode's vCPUs run on the hart's own F and D (the hypervisor switches the f
        # registers; trap and pv vCPUs' real sstatus.FS follows their virtual one)
        isa="rv64imafdcsu_zicsr_zifencei_sstc",
        mmu_type="riscv,sv48",
        timebase_frequency=C.TIMEBASE_HZ,
        plic_ndev=0x60,
        bootargs=spec.append,
        initrd_start=None if plan.initrd is None else plan.initrd.segments[0].address,
        initrd_end=None if plan.initrd is None else plan.initrd.end,
    )
    return board_dtb(board)


def place_vm(write: Callable[[int, bytes], None], plan: VmPlan) -> None:
    """Copy the guest's segments and device tree into its host RAM (``write(address, data)``)."""
    from rvh.boot import qemu_fdt_address

    place_segments(plan.elf, write, plan.host_base - GUEST_RAM_BASE)
    if plan.initrd is not None:
        place_segments(plan.initrd, write, plan.host_base - GUEST_RAM_BASE)
    plan.dtb = guest_device_tree(plan)
    address = qemu_fdt_address(GUEST_RAM_BASE, plan.spec.memory, len(plan.dtb))
    if address < max(plan.elf.end, plan.initrd.end if plan.initrd else 0):
        raise LoadError(f"{plan.spec.path}: no room for the VM's device tree above the image")
    plan.dtb_address = address
    write(plan.host(address), plan.dtb)


def add_hypervisor_node(tree: DeviceTree, plans: list[VmPlan]) -> None:
    """The host tree's description of the VMs (read by firmware/hyp/fdt.c)."""
    node = tree.root.add("hypervisor")
    node.prop_str("compatible", "rvh,hypervisor")
    node.prop_u32("#address-cells", 2)
    node.prop_u32("#size-cells", 2)
    node.prop_reg((STATS_ADDRESS, STATS_SIZE), name="rvh,stats")
    for plan in plans:
        vm = node.add(f"vm@{plan.index:x}")
        vm.prop_str("compatible", "rvh,vm")
        vm.prop_reg((plan.host_base, plan.spec.memory))
        vm.prop_u64("rvh,guest-base", GUEST_RAM_BASE)
        vm.prop_u64("rvh,entry", plan.elf.entry)
        vm.prop_u64("rvh,dtb", plan.dtb_address)
        vm.prop_u32("rvh,vcpus", plan.spec.vcpus)
        vm.prop_str("rvh,virt", plan.spec.virt)
        if plan.spec.spec != "current":
            vm.prop_str("rvh,spec", plan.spec.spec)
        vm.prop_str("rvh,name", plan.name)
        if plan.spec.machine_slots:
            vm.prop_cells("rvh,virtio-slots", *plan.spec.machine_slots)
            vm.prop_str("rvh,io", plan.spec.io)
        if plan.spec.machine_pv_devices:
            vm.prop_cells("rvh,pv-devices", *plan.spec.machine_pv_devices)
            vm.prop_str("rvh,io", plan.spec.io)


def attach_vm_devices(config: MachineConfig, specs: list[GuestSpec]) -> None:
    """Give the machine a virtio-mmio device for every VM drive and NIC, and record in each
    spec the machine slots that are its (the hypervisor drives them; nothing else may).

    The machine numbers its devices drives first, then NICs, from the highest slot down
    (:meth:`rvh.machine.Machine._attach_virtio`), so a VM's drives follow the native
    ``--drive``s and its NICs the native ``--netdev``s.  ``netdev=ID`` takes the native
    ``--netdev socket,id=ID`` when there is one (the VM then owns that link), else it is a new
    port on hub ``ID``, where it meets native NICs and other VMs' NICs."""
    from rvh.devices.virtio.options import parse_drive, parse_netdev

    drives = list(config.drives)
    netdevs = list(config.netdevs)
    native_ids: dict[str, int] = {}
    for index, text in enumerate(netdevs):
        try:
            options = parse_netdev(text)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if options.kind == "socket":
            native_ids[options.id] = index
    claimed: set[int] = set()
    vm_drive_index: list[list[int]] = []
    vm_net_index: list[list[int]] = []
    for spec in specs:
        # io=pv: the machine devices are pv devices of the platform I/O extension (if=pv),
        # which the hypervisor's pv backend forwards the VM's rings to
        interface = ",if=pv" if spec.io == "pv" else ""
        mine = []
        for drive in spec.drives:
            text = f"file={drive.path.replace(',', ',,')},format=raw"
            mine.append(len(drives))
            drives.append(text + (",readonly=on" if drive.readonly else "") + interface)
        vm_drive_index.append(mine)
        nics = []
        for nic_index, netdev in enumerate(spec.netdevs):
            mac = spec.macs.get(nic_index)
            if netdev in native_ids:
                if native_ids[netdev] in claimed:
                    raise ConfigError(f"--guest netdev={netdev}: that socket has one VM already")
                if mac is not None:
                    raise ConfigError(
                        f"--guest netdev={netdev},mac={mac}: the socket's MAC is its --netdev's"
                    )
                claimed.add(native_ids[netdev])
                nics.append(native_ids[netdev])
                netdevs[native_ids[netdev]] += interface
            else:
                nics.append(len(netdevs))
                netdevs.append(f"hub,id={netdev}" + (f",mac={mac}" if mac else "") + interface)
        vm_net_index.append(nics)
    try:
        is_pv = [parse_drive(text).pv for text in drives]
        is_pv += [parse_netdev(text).pv for text in netdevs]
    except ValueError as error:
        raise ConfigError(str(error)) from None
    slots = is_pv.count(False)
    if slots > C.VIRTIO_SLOTS:
        raise ConfigError(
            f"the machine has {C.VIRTIO_SLOTS} virtio-mmio slots; the VMs and --drive/--netdev "
            f"need {slots}"
        )
    if len(is_pv) - slots > C.PVIO_MAX_DEVICES:
        raise ConfigError(
            f"the machine has {C.PVIO_MAX_DEVICES} pv devices; the VMs with io=pv and "
            f"--drive/--netdev if=pv need {len(is_pv) - slots}"
        )
    # the machine numbers virtio devices (slots from the highest down) and pv devices apart,
    # each in the order drives, then NICs
    slot_of = [sum(not pv for pv in is_pv[:index]) for index in range(len(is_pv))]
    pv_of = [sum(is_pv[:index]) for index in range(len(is_pv))]
    for spec, drive_index, net_index in zip(specs, vm_drive_index, vm_net_index, strict=True):
        indices = drive_index + [len(drives) + index for index in net_index]
        if spec.io == "pv":
            spec.machine_pv_devices = [pv_of[index] for index in indices]
            spec.machine_slots = []
        else:
            spec.machine_slots = [C.VIRTIO_SLOTS - 1 - slot_of[index] for index in indices]
    config.drives = drives
    config.netdevs = netdevs
    # passthrough devices do DMA at the VM's guest-physical addresses: the IOMMU translates
    if any(spec.io == "passthrough" and spec.device_count for spec in specs):
        config.iommu = True


def host_device_tree(machine_tree: bytes, plans: list[VmPlan]) -> bytes:
    tree = parse_dtb(machine_tree)
    add_hypervisor_node(tree, plans)
    return tree.to_dtb()


def qemu_command(
    machine_tree: bytes,
    plans: list[VmPlan],
    ram: Callable[[int, int], bytes],
    memory: int,
    out: Path,
    firmware: str = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf",
    config: MachineConfig | None = None,
    harts: int = 1,
) -> list[str]:
    """The QEMU 7.2 command that runs the same hypervisor and VMs: the host tree and each VM's
    RAM as rvh prepared them (``ram(address, size)`` reads host RAM), under OpenSBI, with the
    machine virtio devices of ``config`` in the same slots (QEMU, like rvh, gives the first
    ``-device`` the highest slot), on ``harts`` host harts."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "host.dtb").write_bytes(machine_tree)
    command = [
        "qemu-system-riscv64", "-machine", "virt", "-cpu", "rv64,h=true", "-smp", str(harts),
        "-m", f"{memory >> 20}M", "-nographic", "-bios", firmware,
        "-kernel", str(hypervisor_elf()), "-dtb", str(out / "host.dtb"),
    ]  # fmt: skip
    for plan in plans:
        image = out / f"{plan.name}.bin"
        image.write_bytes(ram(plan.host_base, plan.spec.memory))
        command += ["-device", f"loader,file={image},addr={plan.host_base:#x},force-raw=on"]
    if config is not None and (config.drives or config.netdevs):
        command += _qemu_virtio_args(config)
    return command


def _qemu_virtio_args(config: MachineConfig) -> list[str]:
    from rvh.devices.virtio.net import default_mac, format_mac
    from rvh.devices.virtio.options import parse_drive, parse_netdev

    args = ["-global", "virtio-mmio.force-legacy=false"]  # QEMU 7.2's virt defaults to v1
    for index, text in enumerate(config.drives):
        drive = parse_drive(text)
        readonly = ",readonly=on" if drive.readonly else ""
        args += ["-drive", f"file={drive.file},if=none,format=raw,id=d{index}{readonly}"]
        args += ["-device", f"virtio-blk-device,drive=d{index}"]
    hubs: dict[str, int] = {}
    for index, text in enumerate(config.netdevs):
        options = parse_netdev(text)
        if options.kind != "hub":
            raise ConfigError(f"--netdev {text!r}: only hub netdevs are exported for QEMU")
        hub = hubs.setdefault(options.id, len(hubs))
        mac = format_mac(options.mac or default_mac(index))
        args += ["-netdev", f"hubport,id=n{index},hubid={hub}"]
        args += ["-device", f"virtio-net-device,netdev=n{index},mac={mac}"]
    return args


def export_for_qemu(
    specs: list[GuestSpec], out: Path, firmware: str | None = None, harts: int = 1
) -> list[str]:
    """Prepare the hypervisor's run exactly as ``rvh run --hyp --smp HARTS`` would (host tree,
    each VM's RAM) and return the QEMU command that runs it (tools/hyp_qemu.py and the QEMU
    tests use it)."""
    from rvh.boot import HypervisorBoot
    from rvh.machine import Machine

    config = MachineConfig(memory=max(MachineConfig.memory, host_memory_needed(specs)), harts=harts)
    if any(spec.io == "passthrough" and spec.device_count for spec in specs):
        raise ConfigError("io=passthrough needs rvh's RISC-V IOMMU; QEMU 7.2 has none")
    if any(spec.io == "pv" and spec.device_count for spec in specs):
        raise ConfigError("io=pv needs rvh's platform I/O extension; QEMU 7.2 has none")
    attach_vm_devices(config, specs)
    machine = Machine(config, output=lambda data: None)
    recipe = HypervisorBoot(specs)
    machine.boot(recipe)
    extra = {"firmware": firmware} if firmware else {}
    command = qemu_command(
        machine.fdt_blob, recipe.plans, machine.bus.read_bytes, config.memory, out,
        config=config, harts=harts, **extra,
    )  # fmt: skip
    for device in machine.virtio:
        device.close()  # rvh's locks on the images: QEMU takes them next
    return command


def hyp_stats_header() -> str:
    """The C header of the stats page's layout (firmware/hyp includes it as rvh/hyp_stats.h)."""
    lines = [
        "/* generated by rvh/hyp.py (python -m rvh.hyp OUT): the layout of the hypervisor's",
        " * stats page, one slot of u64 words per VM; rvh run --stats reads it. Do not edit. */",
        "#ifndef RVH_HYP_STATS_H",
        "#define RVH_HYP_STATS_H",
        f"#define HYP_STATS_ADDRESS     {STATS_ADDRESS:#x}UL",
        f"#define HYP_STATS_SIZE        {STATS_SIZE:#x}",
        f"#define HYP_STATS_SLOT_WORDS  {STATS_SLOT_WORDS}",
        f"#define HYP_STAT_STATE        {STATS_STATE}",
        f"#define HYP_STAT_STATUS       {STATS_STATUS}",
        f"#define HYP_STAT_MODE         {STATS_MODE}",
        f"#define HYP_STAT_SBI          {STATS_SBI}",
        f"#define HYP_STAT_SCAUSE       {STATS_SCAUSE}",
        f"#define HYP_SCAUSE_COUNT      {SCAUSE_COUNT}",
        f"#define HYP_STAT_CSR_BY_NUMBER {STATS_CSR}",
        f"#define HYP_TRAP_CSR_COUNT    {len(TRAP_CSRS)}",
        "#define HYP_TRAP_CSR_NUMBERS  " + ", ".join(f"CSR_{name.upper()}" for name in TRAP_CSRS),
        "#define HYP_TRAP_CSR_NAMES    " + ", ".join(f'"{name}"' for name in TRAP_CSRS),
        f"#define HYP_STAT_PV           {STATS_PV}",
        f"#define HYP_STAT_HART_SLICES  {STATS_HART_SLICES}",
        f"#define HYP_STATS_HARTS       {MAX_HOST_HARTS}",
        f"#define HYP_PV_FUNCTIONS      {len(PV_FUNCTIONS)}",
        f"#define HYP_VM_COUNTERS       {len(VM_COUNTERS)}",
        f"#define HYP_SBI_EXTENSIONS    {len(SBI_EXTENSIONS)}",
    ]
    for index, name in enumerate(VM_COUNTERS):
        lines.append(f"#define HYP_STAT_{name.upper():<20} {STATS_COUNTERS + index}")
    for index, name in enumerate(SBI_EXTENSIONS):
        lines.append(f"#define HYP_SBI_{name.upper():<21} {index}")
    for index, name in enumerate(VM_STATES):
        lines.append(f"#define HYP_VM_STATE_{name.upper().replace(' ', '_'):<16} {index}")
    names = ", ".join(f'"{name}"' for name in VM_COUNTERS)
    lines.append(f"#define HYP_VM_COUNTER_NAMES  {names}")
    names = ", ".join(f'"{name}"' for name in SBI_EXTENSIONS)
    lines.append(f"#define HYP_SBI_NAMES         {names}")
    names = ", ".join(f'"{name}"' for name in PV_FUNCTIONS)
    lines.append(f"#define HYP_PV_NAMES          {names}")
    lines += ["#endif", ""]
    return "\n".join(lines)


@dataclass
class VmStats:
    """One VM's slot of the stats page, as rvh run --stats prints it."""

    index: int
    state: str
    mode: str
    status: int
    counters: dict[str, int]
    sbi: dict[str, int]
    scause: dict[int, int]
    csrs: dict[str, int] = field(default_factory=dict)  # trap mode: CSR emulation by CSR
    pv: dict[str, int] = field(default_factory=dict)
    # slices on each host hart (a vCPU of the VM given that hart), by the hypervisor's hart index
    hart_slices: list[int] = field(default_factory=list)
    # HS-mode instructions spent on this VM's exits (the emulator's count, hw mode), or None
    hypervisor_instructions: int | None = None

    def lines(self) -> list[str]:
        counters = ", ".join(f"{k} {v}" for k, v in self.counters.items() if k != "exits")
        sbi = ", ".join(f"{k} {v}" for k, v in self.sbi.items() if v) or "none"
        scause = ", ".join(f"{k}: {v}" for k, v in self.scause.items()) or "none"
        lines = [
            f"vm {self.index} ({self.mode}): {self.state}, status {self.status}",
            f"  exits {self.counters['exits']}: {counters}",
            f"  sbi calls: {sbi}",
            f"  exits by scause: {scause}",
        ]
        csrs = ", ".join(f"{k} {v}" for k, v in self.csrs.items() if v)
        if csrs:
            lines.append(f"  csr emulated: {csrs}")
        if self.mode == "pv":
            pv = ", ".join(f"{k} {v}" for k, v in self.pv.items() if v) or "none"
            lines.append(f"  pv calls: {pv}")
        if any(self.hart_slices[1:]):
            used = max(h for h, n in enumerate(self.hart_slices) if n) + 1
            slices = ", ".join(f"{h}: {n}" for h, n in enumerate(self.hart_slices[:used]))
            lines.append(f"  slices by host hart: {slices}")
        if self.hypervisor_instructions is not None:
            exits = self.counters["exits"]
            per_exit = f"{self.hypervisor_instructions / exits:.1f}" if exits else "-"
            lines.append(
                f"  hypervisor: {self.hypervisor_instructions} HS instructions, {per_exit} per exit"
            )
        return lines


def vm_vmid(index: int) -> int:
    """The VMID the hypervisor gives VM ``index`` in hw mode (firmware/hyp/gstage.c)."""
    return index + 1


def read_stats(page: bytes) -> list[VmStats]:
    """Decode the stats page (only the VMs the hypervisor has filled in)."""
    import struct

    words = struct.unpack(f"<{len(page) // 8}Q", page)
    found = []
    for index in range(len(page) // (STATS_SLOT_WORDS * 8)):
        slot = words[index * STATS_SLOT_WORDS : (index + 1) * STATS_SLOT_WORDS]
        state = slot[STATS_STATE]
        if state == 0 or state >= len(VM_STATES):
            continue
        status = slot[STATS_STATUS]
        found.append(
            VmStats(
                index,
                VM_STATES[state],
                VIRT_MODES[slot[STATS_MODE]] if slot[STATS_MODE] < len(VIRT_MODES) else "?",
                status - (1 << 64) if status >> 63 else status,
                {name: slot[STATS_COUNTERS + i] for i, name in enumerate(VM_COUNTERS)},
                {name: slot[STATS_SBI + i] for i, name in enumerate(SBI_EXTENSIONS)},
                {c: slot[STATS_SCAUSE + c] for c in range(SCAUSE_COUNT) if slot[STATS_SCAUSE + c]},
                {
                    name: slot[STATS_CSR + i]
                    for i, name in enumerate((*TRAP_CSRS, "other"))
                    if slot[STATS_CSR + i]
                },
                {name: slot[STATS_PV + i] for i, name in enumerate(PV_FUNCTIONS)},
                list(slot[STATS_HART_SLICES : STATS_HART_SLICES + MAX_HOST_HARTS]),
            )
        )
    return found


if __name__ == "__main__":
    import sys

    Path(sys.argv[1]).parent.mkdir(parents=True, exist_ok=True)
    Path(sys.argv[1]).write_text(hyp_stats_header())

"""Boot recipes: how a machine gets from reset to the first instruction of the program.

A recipe loads its images into a built :class:`rvh.machine.Machine`, writes the device tree and
puts every hart where the program expects to start; on a system reset (test device 0x7777, SBI
SRST) it puts them there again.  The machine knows nothing of the ways it can be booted, so a
new way (the hypervisor's ``--hyp``) is one more class here:

- :class:`BareElf`: ``rvh run ELF``.  The boot ROM jumps to the ELF's entry in M-mode with
  a0 = hartid, a1 = device tree (QEMU's ``-bios none -kernel``; Spike).  An ELF with a
  ``tohost`` symbol also gets HTIF.
- :class:`BuiltinSbiBoot`: ``rvh run --sbi ELF``.  No M-mode code runs: rvh's SBI
  (:mod:`rvh.sbi`) starts the payload in S-mode and serves its ecalls.
- :class:`FirmwareBoot`: ``rvh run --firmware FW [--kernel PAYLOAD]``.  Real M-mode firmware
  (OpenSBI fw_jump or fw_dynamic) starts from the boot ROM and jumps to the payload itself.
- :class:`HypervisorBoot`: ``rvh run --hyp --guest SPEC ...``.  rvh's hypervisor
  (``firmware/hyp``) as the built-in SBI's payload, its VMs placed in RAM and described in the
  device tree (:mod:`rvh.hyp`).

Each recipe can also tell, from the program's code, whether it was probably meant to be booted
another way (:meth:`BootRecipe.mode_hint`): the machine adds that to its message when a hart is
stuck in a trap loop, the usual symptom of an S-mode payload run bare or an M-mode program run
with ``--sbi``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rvh import config as C
from rvh.bus import Bus
from rvh.cpu.hart import Hart
from rvh.cpu.layout import M_FIRMWARE_TRAPS
from rvh.devices.bootrom import boot_rom
from rvh.errors import ConfigError, LoadError
from rvh.isa.disasm import instruction_length
from rvh.loader import (
    IMAGE_ALIGN,
    LoadedElf,
    Segment,
    check_fits,
    overlap,
    place,
    place_segments,
    read_firmware,
    read_kernel,
    read_regular_file,
)

if TYPE_CHECKING:
    from rvh.hyp import GuestSpec, VmPlan
    from rvh.machine import Machine

# RISC-V privileged spec 2.1: bits 9:8 of a CSR number give the lowest privilege level that
# may access it
CSR_LEVEL_SUPERVISOR = 1
CSR_LEVEL_MACHINE = 3
OPCODE_SYSTEM = 0x73
# where S-mode payloads are linked for OpenSBI fw_jump on the virt board (FW_JUMP_ADDR), and so
# where most of them are
SUPERVISOR_PAYLOAD_ADDRESS = 0x8020_0000
# QEMU 7.2 puts the initrd this far above the kernel's start, or half of RAM when that is less
# (hw/riscv/boot.c: far enough that the kernel does not overwrite it as it unpacks, low enough
# to be in the kernel's first mapping)
INITRD_OFFSET_MAX = 128 << 20


class BootRecipe(Protocol):
    """One way to boot the machine."""

    def apply(self, machine: Machine) -> LoadedElf:
        """Load the images, write the device tree and the harts' start state; returns the
        ELF that runs first (its symbols serve traces and tools)."""
        ...

    def reset(self, machine: Machine) -> None:
        """System reset: every hart starts again as :meth:`apply` left it."""
        ...

    def mode_hint(self) -> str | None:
        """Why the program may be meant for another recipe, or None."""
        ...


def privilege_of_code(elf: LoadedElf) -> str | None:
    """Which privilege level the ELF's code was written for: ``"M"`` when its executable
    sections access machine-level CSRs, ``"S"`` when they access only supervisor-level (and
    user) ones, None when neither.  An S-mode payload comes with no M-mode code at all."""
    levels: set[int] = set()
    for _, code in elf.code:
        offset = 0
        while offset + 4 <= len(code):
            low = code[offset] | code[offset + 1] << 8
            if instruction_length(low) != 4:
                offset += 2
                continue
            word = int.from_bytes(code[offset : offset + 4], "little")
            if word & 0x7F == OPCODE_SYSTEM and (word >> 12) & 7 not in (0, 4):  # Zicsr
                levels.add((word >> 28) & 3)
            offset += 4
    if CSR_LEVEL_MACHINE in levels:
        return "M"
    if CSR_LEVEL_SUPERVISOR in levels:
        return "S"
    return None


def qemu_fdt_address(ram_base: int, ram_size: int, size: int) -> int:
    """Where QEMU 7.2's virt board puts a device tree of ``size`` bytes: the highest 2 MiB-aligned
    address that leaves room for it below the end of RAM (or 3 GiB)."""
    end = ram_base + ram_size
    top = min(end, 3 << 30) if ram_base < 3 << 30 else end
    return (top - size) & ~((2 << 20) - 1)


def place_device_tree(machine: Machine, images: Sequence[LoadedElf]) -> int:
    """Write the device tree where QEMU 7.2's virt board puts it (the highest 2 MiB-aligned
    address that leaves room below the end of RAM or 3 GiB), unless that would cover a loaded
    image: then the first 8-byte aligned space after the images.  Returns its address."""
    blob = machine.device_tree()
    size = len(blob)
    ram_end = C.RAM_BASE + machine.config.memory
    address = qemu_fdt_address(C.RAM_BASE, machine.config.memory, size)
    segments = [segment for image in images for segment in image.segments]
    if any(address < s.address + s.memory_size and s.address < address + size for s in segments):
        address = (max(s.address + s.memory_size for s in segments) + 7) & ~7
    if address + size > ram_end:
        raise LoadError("RAM is too small for the program and its device tree")
    machine.bus.write_bytes(address, blob)
    machine.fdt_blob = blob
    machine.fdt_address = address
    return address


def kernel_and_initrd(
    machine: Machine, kernel_path: str, address: int, initrd_path: str | None
) -> list[LoadedElf]:
    """Load the kernel (an ELF at its own addresses, or a Linux Image at ``address``) and the
    initrd where QEMU 7.2 puts it: the kernel's start plus half of RAM or 128 MiB, whichever
    is less.  The initrd's range goes to /chosen (linux,initrd-start/end).  Returns the images
    written, kernel first."""
    kernel = read_kernel(kernel_path, address)
    place(machine.bus, kernel)
    images = [kernel]
    if initrd_path is not None:
        data = read_regular_file(initrd_path, "initrd")
        start = min(s.address for s in kernel.segments)
        start += min(machine.config.memory // 2, INITRD_OFFSET_MAX)
        end = start + len(data)
        ram_end = C.RAM_BASE + machine.config.memory
        if end > ram_end:
            raise LoadError(
                f"{initrd_path}: the initrd ({len(data)} bytes at {start:#x}) does not fit in "
                f"RAM, which ends at {ram_end:#x} (try a larger --memory)"
            )
        initrd = LoadedElf(initrd_path, start, [Segment(start, data, len(data))])
        if overlap(kernel, initrd):
            raise LoadError(
                f"{kernel_path}: the kernel ({kernel.end - kernel.segments[0].address} bytes "
                f"at {kernel.segments[0].address:#x}) overlaps the initrd at {start:#x}"
            )
        place(machine.bus, initrd)
        machine.initrd_range = (start, end)
        images.append(initrd)
    return images


def reload_images(machine: Machine, images: Sequence[LoadedElf]) -> None:
    """System reset: write the images and the device tree again, as QEMU reloads its ROM
    images at reset (the rest of RAM keeps what it held)."""
    for image in images:
        place_segments(image, machine.bus.write_bytes)
    if machine.fdt_blob:
        machine.bus.write_bytes(machine.fdt_address, machine.fdt_blob)


def start_from_boot_rom(machine: Machine, start: int, next_address: int | None = None) -> None:
    """The boot ROM jumps to ``start`` (with a1 = device tree, and OpenSBI's fw_dynamic info
    naming ``next_address``); every hart resets to it."""
    machine.boot_rom_image = boot_rom(start, machine.fdt_address, next_address)
    machine.bus.write_bytes(C.BOOT_ROM_BASE, machine.boot_rom_image, rom=True)
    for hart in machine.harts:
        hart.reset(C.BOOT_ROM_BASE)


class BareElf:
    """``rvh run ELF``: an M-mode program entered from the boot ROM."""

    def __init__(self, path: str, initrd: str | None = None) -> None:
        self.path = path
        self.initrd = initrd
        self.elf: LoadedElf | None = None
        self.images: list[LoadedElf] = []

    def apply(self, machine: Machine) -> LoadedElf:
        # QEMU's -bios none -kernel: a Linux Image goes at the start of RAM
        self.images = kernel_and_initrd(machine, self.path, C.RAM_BASE, self.initrd)
        elf = self.elf = self.images[0]
        machine.attach_htif(elf)
        place_device_tree(machine, self.images)
        start_from_boot_rom(machine, elf.entry)
        return elf

    def reset(self, machine: Machine) -> None:
        reload_images(machine, self.images)
        for hart in machine.harts:
            hart.reset(C.BOOT_ROM_BASE)

    def mode_hint(self) -> str | None:
        if self.elf is None:
            return None
        kind = privilege_of_code(self.elf)
        linked_as_payload = self.elf.entry == SUPERVISOR_PAYLOAD_ADDRESS
        if kind == "S" or (kind is None and linked_as_payload):
            why = "uses only S-mode CSRs" if kind == "S" else f"is linked at {self.elf.entry:#x}"
            return (
                f"did you mean --sbi? {self.path} {why}, like an S-mode payload, but runs in "
                "M-mode with no firmware under it"
            )
        return None


class BuiltinSbiBoot:
    """``rvh run --sbi ELF``: the payload starts in S-mode on rvh's built-in SBI."""

    def __init__(self, path: str, initrd: str | None = None) -> None:
        self.path = path
        self.initrd = initrd
        self.elf: LoadedElf | None = None
        self.entry = 0
        self.images: list[LoadedElf] = []

    def apply(self, machine: Machine) -> LoadedElf:
        # no firmware occupies RAM, but a Linux Image still goes 2 MiB in, where it goes on
        # QEMU above OpenSBI (and where payloads linked for fw_jump are)
        self.images = kernel_and_initrd(machine, self.path, C.RAM_BASE + IMAGE_ALIGN, self.initrd)
        elf = self.elf = self.images[0]
        self.entry = elf.entry
        place_device_tree(machine, self.images)
        self.install_firmware(machine)
        self.reset(machine)
        return elf

    def install_firmware(self, machine: Machine) -> None:
        """The built-in SBI as the machine's M-mode (also for a restored VM file: the SBI
        keeps no state of its own beyond counters, the harts' CSRs hold the rest)."""
        from rvh.sbi import BuiltinSbi

        # traps that would enter M-mode leave the kernel for the SBI (Exit.FIRMWARE)
        machine.config.firmware_traps = True
        machine.machine[M_FIRMWARE_TRAPS] = 1
        sbi = BuiltinSbi(MachinePlatform(machine), pvio=machine.pvio)
        machine.sbi = sbi
        machine.firmware_handler = sbi.handle

    def reset(self, machine: Machine) -> None:
        """Hart 0 starts the payload at its entry with a0 = 0 and a1 = the device tree; the
        other harts wait in HSM STOPPED (SBI 2.0, chapter 9) for a hart_start.  At a reboot
        the images are loaded again (a restored VM file has none: its RAM is as it was)."""
        assert machine.sbi is not None
        reload_images(machine, self.images)
        for hart in machine.harts:
            start = self.entry if hart.hartid == 0 else None
            machine.sbi.prepare_hart(hart, start, machine.fdt_address)

    def mode_hint(self) -> str | None:
        if self.elf is not None and privilege_of_code(self.elf) == "M":
            return (
                f"did you mean to run it without --sbi? {self.path} accesses M-mode CSRs, "
                "which S-mode may not"
            )
        return None


class HypervisorBoot(BuiltinSbiBoot):
    """``rvh run --hyp --guest SPEC ...``: the hypervisor in HS-mode on the built-in SBI, one
    VM per guest.  Each VM's image and device tree go into its host RAM above the hypervisor,
    and the host tree's /hypervisor node describes them (:mod:`rvh.hyp`)."""

    def __init__(self, guests: Sequence[GuestSpec]) -> None:
        from rvh.hyp import hypervisor_elf

        super().__init__(str(hypervisor_elf()))
        self.guests = list(guests)
        self.plans: list[VmPlan] = []

    def apply(self, machine: Machine) -> LoadedElf:
        from rvh import hyp

        self.plans = hyp.plan_vms(
            self.guests, machine.config.memory, "h" in machine.config.extensions
        )
        if not Path(self.path).is_file():
            raise LoadError(f"{self.path}: the hypervisor is not built (make guests)")
        for spec in self.guests:
            if spec.device_count and spec.machine_slots is None:
                raise ConfigError(
                    f"--guest {spec.path}: its drives and NICs need machine devices "
                    "(rvh.hyp.attach_vm_devices before the machine is built)"
                )
        for plan in self.plans:
            hyp.place_vm(machine.bus.write_bytes, plan)
        plans = self.plans
        machine.device_tree_hooks.append(lambda tree: hyp.add_hypervisor_node(tree, plans))
        return super().apply(machine)

    def mode_hint(self) -> str | None:
        return None


class FirmwareBoot:
    """``rvh run --firmware FW [--kernel PAYLOAD] [--initrd FILE]``: M-mode firmware (an ELF,
    or a raw binary at the start of RAM) from the boot ROM, with the payload named in the
    fw_dynamic info.  An ELF payload goes at its own addresses, a Linux Image at the first
    2 MiB boundary after the firmware (as QEMU 7.2 places them)."""

    def __init__(self, firmware: str, kernel: str | None = None, initrd: str | None = None) -> None:
        self.firmware = firmware
        self.kernel = kernel
        self.initrd = initrd
        self.images: list[LoadedElf] = []

    def apply(self, machine: Machine) -> LoadedElf:
        firmware = read_firmware(self.firmware, C.RAM_BASE)
        check_fits(machine.bus, firmware)
        images = [firmware]
        payload = None
        if self.initrd is not None and self.kernel is None:
            raise LoadError("--initrd goes with --kernel")
        if self.kernel is not None:
            address = (firmware.end + IMAGE_ALIGN - 1) & ~(IMAGE_ALIGN - 1)
            kernel_images = kernel_and_initrd(machine, self.kernel, address, self.initrd)
            payload = kernel_images[0]
            if overlap(firmware, payload):
                raise LoadError(f"{self.kernel}: overlaps the firmware {self.firmware} in memory")
            images += kernel_images
        place_segments(firmware, machine.bus.write_bytes)
        self.images = images
        place_device_tree(machine, images)
        start_from_boot_rom(machine, firmware.entry, payload.entry if payload else None)
        return firmware

    def reset(self, machine: Machine) -> None:
        reload_images(machine, self.images)
        for hart in machine.harts:
            hart.reset(C.BOOT_ROM_BASE)

    def mode_hint(self) -> str | None:
        return None


class MachinePlatform:
    """What the built-in SBI may use of a machine (:class:`rvh.sbi.SbiPlatform`)."""

    def __init__(self, machine: Machine) -> None:
        self._machine = machine
        self._bus: Bus = machine.bus
        self.harts: Sequence[Hart] = machine.harts
        self.has_hypervisor = "h" in machine.config.extensions
        self.console_write: Callable[[bytes], None] = machine.console_write
        self.power_off: Callable[[int, str], None] = machine.power_off
        self.request_reset: Callable[[], None] = machine.request_reset

    def console_read(self, count: int) -> bytes:
        """Up to ``count`` bytes the UART has received and the guest has not read."""
        received = self._machine.uart.rx
        data = bytearray()
        while received and len(data) < count:
            data.append(received.popleft())
        return bytes(data)

    def is_memory(self, address: int, length: int) -> bool:
        return self._bus.host_offset(address, length) is not None

    def read_memory(self, address: int, length: int) -> bytes:
        return self._bus.read_bytes(address, length)

    def write_memory(self, address: int, data: bytes) -> None:
        self._bus.write_bytes(address, data)

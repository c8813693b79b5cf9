"""Test helpers: assemble RISC-V snippets with the cross toolchain and run them on a real hart.

``run_asm`` places the assembled code at the start of RAM, starts the hart there in M-mode
(skipping the boot ROM) and runs until the snippet executes ``wfi`` with no interrupt enabled,
the conventional end of a snippet.  Nothing is mocked: it is the kernel the CLI runs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rvh.config import RAM_BASE, MachineConfig

if TYPE_CHECKING:
    from rvh.cpu.hart import Hart
    from rvh.machine import Machine

CROSS = os.environ.get("CROSS", "riscv64-unknown-elf-")
MARCH = "rv64imafdc_zicsr_zifencei"
ROOT = Path(__file__).resolve().parent.parent
GUESTS = ROOT / "guests" / "build"
_CACHE = Path(tempfile.gettempdir()) / "rvh-test-asm"

# The tools the suite needs.  A missing one FAILS the test that needs it with one line saying
# what to install, never skips it (tests/skip_policy.py: a skip proves nothing).
SETUP_HINT = "run make setup"
QEMU_PACKAGE = "Debian 12's qemu-system-misc (QEMU 7.2)"
REFERENCE_QEMU_VERSION = (7, 2)  # every deviation rule in rvh/diff.py describes QEMU 7.2
OPENSBI_FW_JUMP = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf")


def require_tool(command: str, package: str) -> str:
    """The path of ``command``; fails the calling test when it is not installed."""
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} not found: install {package} ({SETUP_HINT})", pytrace=False)
    return path


def require_toolchain() -> None:
    require_tool(CROSS + "gcc", "the RISC-V cross toolchain, gcc-riscv64-unknown-elf")


def require_dtc() -> str:
    return require_tool("dtc", "device-tree-compiler")


def require_opensbi() -> Path:
    if not OPENSBI_FW_JUMP.exists():
        pytest.fail(f"{OPENSBI_FW_JUMP} not found: install opensbi ({SETUP_HINT})", pytrace=False)
    return OPENSBI_FW_JUMP


def qemu_version_problem(binary: str) -> str | None:
    """Why ``binary`` cannot be the reference QEMU, or None when it is QEMU 7.2."""
    if shutil.which(binary) is None:
        return f"{binary} not found: install {QEMU_PACKAGE} ({SETUP_HINT})"
    return _version_problem(binary)


@functools.cache
def _version_problem(binary: str) -> str | None:
    try:
        banner = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"{binary} --version failed ({error}): install {QEMU_PACKAGE}"
    found = re.search(r"version (\d+)\.(\d+)", banner)
    if found is None:
        return f"{binary} --version printed no version: install {QEMU_PACKAGE}"
    version = (int(found[1]), int(found[2]))
    if version != REFERENCE_QEMU_VERSION:
        wanted = ".".join(map(str, REFERENCE_QEMU_VERSION))
        return (
            f"{binary} is QEMU {version[0]}.{version[1]}, the deviation rules describe QEMU "
            f"{wanted}: install {QEMU_PACKAGE} or point RVH_QEMU at a QEMU {wanted}"
        )
    return None


def require_qemu() -> str:
    """The reference QEMU (``$RVH_QEMU`` or qemu-system-riscv64); fails the calling test when it
    is missing or not QEMU 7.2."""
    binary = os.environ.get("RVH_QEMU", "qemu-system-riscv64")
    problem = qemu_version_problem(binary)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return binary


def require_guest(path: Path) -> Path:
    """A built guest ELF; fails the calling test when the guests are not built."""
    if not path.exists():
        pytest.fail(f"{path} not built: run make guests", pytrace=False)
    return path


# kept for the test modules that mark themselves with it: now a check that fails
needs_toolchain = pytest.mark.usefixtures("toolchain")


def assemble_with_symbols(
    source: str, march: str = MARCH, base: int = RAM_BASE
) -> tuple[bytes, dict[str, int]]:
    """Assemble ``source`` (GNU as syntax) into a flat binary linked at ``base``; also return
    the addresses of its symbols."""
    text = ".option norelax\n.section .text\n.globl _start\n_start:\n" + source + "\n"
    require_toolchain()
    key = hashlib.sha256(f"{march}:{base:#x}:{text}".encode()).hexdigest()[:24]
    _CACHE.mkdir(exist_ok=True)
    binary, table = _CACHE / f"{key}.bin", _CACHE / f"{key}.sym"
    if not (binary.exists() and table.exists()):
        with tempfile.TemporaryDirectory() as tmp:
            src, obj, elf = Path(tmp, "s.S"), Path(tmp, "s.o"), Path(tmp, "s.elf")
            src.write_text(text)
            assembled = subprocess.run(
                [CROSS + "gcc", "-c", f"-march={march}", "-mabi=lp64", "-o", str(obj), str(src)],
                capture_output=True,
                text=True,
            )
            if assembled.returncode != 0:
                # the assembler's own messages name the snippet line that is wrong
                pytest.fail(f"the snippet does not assemble:\n{assembled.stderr}", pytrace=False)
            subprocess.run(
                [CROSS + "ld", "-Ttext", hex(base), "-e", "_start", "-o", str(elf), str(obj)],
                check=True,
                capture_output=True,
                text=True,
            )
            symbols = subprocess.run(
                [CROSS + "nm", str(elf)], check=True, capture_output=True, text=True
            ).stdout
            subprocess.run(
                [CROSS + "objcopy", "-O", "binary", str(elf), str(binary) + ".tmp"],
                check=True,
                capture_output=True,
                text=True,
            )
            Path(str(table) + ".tmp").write_text(symbols)
            os.replace(str(table) + ".tmp", table)
            os.replace(str(binary) + ".tmp", binary)
    symbols = {}
    for line in table.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    return binary.read_bytes(), symbols


def assemble(source: str, march: str = MARCH, base: int = RAM_BASE) -> bytes:
    """Assemble ``source`` into a flat binary linked at ``base``."""
    return assemble_with_symbols(source, march, base)[0]


class Snippet:
    """The outcome of running a snippet: registers, CSRs, memory, and the machine."""

    def __init__(self, machine: Machine, end: int) -> None:
        self.machine = machine
        self.hart: Hart = machine.harts[0]
        self.end = end

    def x(self, index: int) -> int:
        return self.hart.x(index)

    def sx(self, index: int) -> int:
        """Register as a signed integer."""
        value = self.hart.x(index)
        return value - (1 << 64) if value >> 63 else value

    def csr(self, name: str) -> int:
        return self.hart.csr(name)

    def read(self, address: int, size: int) -> int:
        return int.from_bytes(self.machine.bus.read_bytes(address, size), "little")

    @property
    def pc(self) -> int:
        return self.hart.pc


def run_asm(
    source: str,
    *,
    regs: dict[int, int] | None = None,
    max_insns: int = 100_000,
    memory: int = 16 << 20,
    data: dict[int, bytes] | None = None,
    expect_end: bool = True,
    extensions: str = "acdfimsuh",
    setup: Callable[[Machine], None] | None = None,
) -> Snippet:
    """Run an assembly snippet in M-mode from RAM_BASE until its final ``wfi``.

    ``extensions`` are the misa letters (the default hart has the H extension; pass
    ``"acdfimsu"`` for one without).  ``setup`` may edit the machine (its decode tables, the
    machine array) before the first instruction."""
    code, symbols = assemble_with_symbols(source + "\n__snippet_end:\n wfi\n")
    # imported here, not at the top: conftest imports this module, and the tool checks above
    # must not cost every pytest run (tests/test_skip_policy.py starts several) numba's import
    from rvh.cpu import layout as L
    from rvh.cpu.exits import Exit
    from rvh.machine import Machine

    machine = Machine(MachineConfig(memory=memory, extensions=extensions), output=lambda _: None)
    machine.machine[L.M_MTIMECMP] = -1  # no timer interrupt unless a test arms one
    if setup is not None:
        setup(machine)
    machine.bus.write_bytes(RAM_BASE, code)
    for address, blob in (data or {}).items():
        machine.bus.write_bytes(address, blob)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    for index, value in (regs or {}).items():
        hart.set_x(index, value)
    end = symbols["__snippet_end"]  # the final wfi
    executed = 0
    while executed < max_insns:
        before = hart.instret
        reason = hart.run(max_insns - executed)
        executed += max(1, hart.instret - before)
        if reason == Exit.MMIO:
            machine.bus.complete_mmio(hart.state)
        elif reason == Exit.WFI:
            if hart.pc == end + 4 or not expect_end:
                break
            hart.state[L.WFI] = 0
        elif reason == Exit.BUDGET:
            break
        if machine.exit_status is not None:
            break
    snippet = Snippet(machine, end)
    if expect_end:
        assert hart.pc == end + 4, f"snippet did not finish: pc={hart.pc:#x}, end={end:#x}"
    return snippet


def build_elf(source: str, path: Path, base: int = RAM_BASE, march: str = MARCH) -> Path:
    """Assemble and link ``source`` (entry ``_start`` first) into an ELF at ``base``."""
    require_toolchain()
    src = path.with_suffix(".S")
    src.write_text(".option norelax\n.section .text\n.globl _start\n_start:\n" + source + "\n")
    subprocess.run(
        [
            CROSS + "gcc",
            f"-march={march}",
            "-mabi=lp64",
            "-nostdlib",
            "-Wl,-n",
            f"-Wl,-Ttext={base:#x}",
            "-o",
            str(path),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path


def run_sbi_payload(
    source: str, tmp_path: Path, *, harts: int = 1, max_instructions: int = 2_000_000
) -> tuple[object, bytes, Machine]:
    """Run an S-mode payload on the built-in SBI; returns (result, console output, machine)."""
    elf = build_elf(source, tmp_path / "payload.elf", base=0x8020_0000)
    from rvh.machine import Machine

    output = bytearray()
    machine = Machine(
        MachineConfig(harts=harts, firmware_traps=True, max_instructions=max_instructions),
        output=output.extend,
    )
    machine.load_sbi_payload(str(elf))
    result = machine.run_sync()
    return result, bytes(output), machine


# ---- virtio guests (guests/virtio): natively and as VMs share these ----
VIRTIO_MKIMAGE = ROOT / "guests" / "virtio" / "mkimage.py"


def virtio_guest(name: str) -> Path:
    return require_guest(GUESTS / "virtio" / f"{name}.elf")


def virtio_image(path: Path, size: str, pattern: int) -> Path:
    """A disk image filled with mkimage.py's pattern ``pattern`` (what the blk guest checks)."""
    import sys

    subprocess.run(
        [sys.executable, str(VIRTIO_MKIMAGE), str(path), "--size", size, "--id", str(pattern)],
        check=True,
        capture_output=True,
    )
    return path


def flush_sector_pattern(sector: int, generation: int) -> bytes:
    """What guests/virtio/blkflush.c (and pvblkflush.c) writes to a sector."""
    data = bytearray((sector * 31 + generation * 7 + i) & 0xFF for i in range(512))
    data[0:8] = sector.to_bytes(8, "little")
    data[8:16] = generation.to_bytes(8, "little")
    return bytes(data)


def kill_after_flushes(run: list[str], seconds: float) -> dict[int, int]:
    """``rvh run RUN`` of a blkflush guest, SIGKILLed once its "flushed SECTOR GENERATION"
    lines have gone past a wrap of the disk (or after ``seconds``): the last generation each
    sector was reported flushed with."""
    import signal
    import sys
    import time

    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", *run, "--serial", "stdio"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    flushed: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(b"flushed "):
                sector, generation = map(int, line.split()[1:3])
                flushed[sector] = generation
            if len(flushed) >= 2048 and flushed.get(100, 0) >= 1 or time.monotonic() > deadline:
                break  # past a wrap of the disk: some sectors were rewritten
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(flushed) > 500
    return flushed


def assert_flushed_writes_kept(disk: Path, flushed: dict[int, int], whole: bool = True) -> None:
    """Every sector holds the generation it was reported flushed with, or a later one (written
    after the last report); ``whole``: and is that generation's pattern, not torn."""
    data = disk.read_bytes()
    for sector, generation in flushed.items():
        on_disk = data[512 * sector : 512 * (sector + 1)]
        found = int.from_bytes(on_disk[8:16], "little")
        assert found >= generation, f"sector {sector}: generation {found} < flushed {generation}"
        if whole:
            assert on_disk == flush_sector_pattern(sector, found), f"sector {sector} is torn"


def run_sbi_elf(elf: Path | str, **config: object):
    """Run an S-mode guest on the built-in SBI in this process: (result, output, machine)."""
    from rvh.machine import Machine

    output = bytearray()
    machine = Machine(
        MachineConfig(firmware_traps=True, max_instructions=2_000_000_000, **config),  # type: ignore[arg-type]
        output=output.extend,
    )
    machine.load_sbi_payload(str(elf))
    result = machine.run_sync()
    return result, output.decode(errors="replace"), machine


# hart slots that record how the kernel got somewhere, not where it got, so they may differ
# between the interpreter and the translating tier (rvh/tier): the general path's share
# differs when a block leaves before an instruction the fast loop then does, and so does the
# trace's record of the last CSR write, which only the general path keeps (the fast loop's CSR
# writes are untraced: a traced run never enters it); the TLB-miss count (the fast loop does a
# misaligned ld/sd within a page; a block leaves before one, and the general path then
# translates it afresh); and the fast loop's cache of legal CSR reads, which every kernel call
# empties (with the tier the kernel returns to Python whenever a block gets hot)
def _tier_not_compared() -> list[int]:
    from rvh.cpu import layout as L

    csr_reads = [*range(L.CSR_READ_KEYS, L.CSR_READ_KEYS + L.CSR_READ_ENTRIES)]
    csr_reads += range(L.CSR_READ_HOW, L.CSR_READ_HOW + L.CSR_READ_ENTRIES)
    return [L.GENERAL_PATH, L.TRACE_CSR, L.TRACE_CSR_VALUE, L.TLB_MISSES, *csr_reads]


TIER_NOT_COMPARED = _tier_not_compared()

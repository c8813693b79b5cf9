"""``rvh diff``: the command line's checks, the reference (saved, or QEMU run now), progress
and hints on stderr, SIGTERM handled as Ctrl-C is, the report on stdout."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from rvh.config import RAM_BASE
from rvh.diff.common import BARE_RUN_HINT, ReferenceError
from rvh.diff.comparison import diff_elf
from rvh.diff.report import format_report
from rvh.errors import EXIT_TERMINATED, ConfigError
from rvh.loader import read_elf
from rvh.trace import StateTrace, read_reference, write_reference

HTIF_HINT = (
    "has a tohost symbol (HTIF), which QEMU's virt machine does not have (its -machine spike "
    "does): expect the runs to part at the first HTIF access"
)


class Terminated(BaseException):
    """SIGTERM arrived.  A BaseException, as KeyboardInterrupt is, so that no ``except
    Exception`` on the way swallows it and every ``with`` on the way (QEMU's process and its
    temporary folder) is unwound."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def diff_command(
    elf: str,
    *,
    reference: str | None = None,
    save_reference: str | None = None,
    hypervisor: bool = True,
    context: int = 10,
    max_instructions: int = 2_000_000,
) -> int:
    """``rvh diff``: prints the report; 0 when rvh and QEMU agree, 1 at a divergence,
    143 when ended by SIGTERM (QEMU stopped, its temporary folder removed)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return _diff(elf, reference, save_reference, hypervisor, context, max_instructions)
    except Terminated:
        print("rvh: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _progress(compared: int, reference: int) -> None:
    print(
        f"rvh diff: {compared:,} instruction boundaries agree so far "
        f"({reference:,} states from QEMU)",
        file=sys.stderr,
        flush=True,
    )


def _diff(
    elf: str,
    reference: str | None,
    save_reference: str | None,
    hypervisor: bool,
    context: int,
    max_instructions: int,
) -> int:
    loaded = read_elf(elf)  # a clear LoadError for what is not a RISC-V ELF
    trace = None
    if reference is not None:
        try:
            trace = read_reference(reference)
        except OSError as error:
            raise ConfigError(f"--reference {reference}: cannot read ({error.strerror})") from None
        except ValueError as error:  # the message names the file
            raise ReferenceError(str(error)) from None
        digest = hashlib.sha256(Path(elf).read_bytes()).hexdigest()
        if trace.meta.get("sha256", digest) != digest:
            raise ReferenceError(f"{reference} was traced from another build of {elf}")
        hypervisor = "V" in trace.fields
    save = None
    if save_reference is not None:
        folder = os.path.dirname(os.path.abspath(save_reference))
        if os.path.isdir(save_reference) or not os.access(folder, os.W_OK):
            raise ConfigError(f"--save-reference {save_reference}: cannot write there")

        def save(whole: StateTrace) -> None:
            try:
                write_reference(whole, save_reference)
            except OSError as error:
                message = f"--save-reference {save_reference}: {error.strerror}"
                raise ConfigError(message) from None

    if loaded.tohost is not None and trace is None:
        print(f"rvh diff: {elf} {HTIF_HINT}", file=sys.stderr)
    if loaded.entry != RAM_BASE:
        print(
            f"rvh diff: {elf} starts at {loaded.entry:#x}, QEMU's -bios none at {RAM_BASE:#x}: "
            + BARE_RUN_HINT,
            file=sys.stderr,
        )
    result = diff_elf(
        elf,
        trace,
        hypervisor=hypervisor,
        context=context,
        max_instructions=max_instructions,
        progress=_progress,
        on_reference=save,
    )
    if result.reference_truncated:
        print(f"rvh diff: QEMU stopped after {result.instructions} instructions (--max-insns)")
    if result.traps_at_end:
        print(
            f"rvh diff: then {result.traps_at_end:,} traps in a row and no instruction "
            f"retired: {BARE_RUN_HINT}"
        )
    print(format_report(result, elf=elf))
    return 0 if result.ok else 1

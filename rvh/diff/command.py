"""``rvh diff``: the command line's checks, the reference (saved, or QEMU run now), the report."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rvh.diff.common import ReferenceError
from rvh.diff.lockstep import diff_elf
from rvh.diff.qemu import run_qemu
from rvh.diff.report import format_report
from rvh.loader import read_elf
from rvh.trace import read_reference, write_reference


def diff_command(
    elf: str,
    *,
    reference: str | None = None,
    save_reference: str | None = None,
    hypervisor: bool = True,
    context: int = 10,
    max_instructions: int = 2_000_000,
) -> int:
    """``rvh diff``: prints the report; 0 when rvh and QEMU agree, 1 at a divergence."""
    read_elf(elf)  # a clear LoadError for what is not a RISC-V ELF
    trace = None
    if reference is not None:
        try:
            trace = read_reference(reference)
        except OSError as error:
            raise ReferenceError(f"{reference}: cannot read ({error.strerror})") from None
        except ValueError as error:  # the message names the file
            raise ReferenceError(str(error)) from None
        digest = hashlib.sha256(Path(elf).read_bytes()).hexdigest()
        if trace.meta.get("sha256", digest) != digest:
            raise ReferenceError(f"{reference} was traced from another build of {elf}")
        hypervisor = "V" in trace.fields
    elif save_reference:
        folder = os.path.dirname(os.path.abspath(save_reference))
        if os.path.isdir(save_reference) or not os.access(folder, os.W_OK):
            raise ReferenceError(f"--save-reference {save_reference}: cannot write there")
        run = run_qemu(elf, hypervisor=hypervisor, max_instructions=max_instructions)
        trace = run.trace
        if run.truncated:
            print(f"rvh diff: QEMU stopped after {len(trace)} instructions (--max-insns)")
        try:
            write_reference(trace, save_reference)
        except OSError as error:
            raise ReferenceError(f"--save-reference {save_reference}: {error.strerror}") from None
    result = diff_elf(
        elf, trace, hypervisor=hypervisor, context=context, max_instructions=max_instructions
    )
    if result.reference_truncated:
        print(f"rvh diff: QEMU stopped after {result.instructions} instructions (--max-insns)")
    print(format_report(result, elf=elf))
    return 0 if result.ok else 1

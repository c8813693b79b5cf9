"""rvh: a RISC-V RV64 system emulator with the hypervisor extension, built to see and measure
virtualization.

Importing the package points numba's on-disk cache at a directory named after a hash of the
kernel's source files.  numba checks only the timestamp of the file that defines a function, so
a change in a module it imports (a table, a constant) could otherwise meet stale machine code.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__version__ = "0.1.0"


def _kernel_source_hash() -> str:
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    kernel = [path for sub in ("cpu", "isa") for path in sorted((package / sub).glob("*.py"))]
    # the translating tier's kernel side (the rest of rvh/tier is plain Python)
    kernel += [package / "tier" / "dispatch.py", package / "tier" / "layout.py"]
    for path in kernel:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _configure_numba_cache() -> None:
    if "NUMBA_CACHE_DIR" in os.environ:
        return
    base = os.environ.get("RVH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rvh"
    )
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "numba-" + _kernel_source_hash())


_configure_numba_cache()

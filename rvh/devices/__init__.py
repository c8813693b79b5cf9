"""Board devices.  Each module names the specification it follows and keeps its register offsets
as named constants; the CLINT's registers are served by the kernel itself (see
``rvh/cpu/memory.py``), its Python side here only names them for snapshots and tools."""

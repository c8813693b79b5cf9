"""A gdb stub for rvh (``rvh run --gdb``): see :mod:`rvh.gdb.stub` and docs/gdb.md."""

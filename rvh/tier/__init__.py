"""The translating tier (``--tier jit``): hot guest blocks compiled to host code with LLVM.

``layout`` names the slots of the array the kernel and Python share, ``dispatch`` is the
kernel's side (find a block, call it), ``translate`` turns a block into LLVM IR and ``engine``
compiles and installs blocks between kernel calls.  See docs/performance.md.
"""

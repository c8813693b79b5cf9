"""The kernel keeps one integer type: numba's inferred types contain no float.

Mixing int64 with uint64 in one expression silently gives float64 in numba (numba issues
#10151, #7888): it would still run, slowly and with wrong results past 2**53.  This test
recompiles the kernel's functions without the cache (the cache keeps no type information)
and looks at the type of every variable."""

import inspect

import numba
import pytest
from numba.core import types

from rvh.cpu import core, csr, fast, interrupts, memory, mmu, trap
from rvh.machine import Machine

MODULES = (core, fast, csr, interrupts, memory, mmu, trap)


def kernel_functions():
    # run a guest so every dispatcher has been compiled (loaded) with its real signature
    machine = Machine(output=lambda _: None)
    machine.harts[0].run(0)
    for module in MODULES:
        for name, value in inspect.getmembers(module):
            if (
                isinstance(value, numba.core.registry.CPUDispatcher)
                and value.__module__ == module.__name__
                and value.signatures
            ):
                yield f"{module.__name__}.{name}", value


@pytest.mark.slow
def test_no_float_in_the_kernel():
    floats = []
    for name, dispatcher in kernel_functions():
        fresh = numba.njit(cache=False)(dispatcher.py_func)
        for signature in dispatcher.signatures:
            fresh.compile(signature)
            typemap = fresh.overloads[signature].type_annotation.typemap
            for variable, kind in typemap.items():
                if isinstance(kind, types.Float) or (
                    isinstance(kind, types.Array) and isinstance(kind.dtype, types.Float)
                ):
                    floats.append(f"{name}: {variable} is {kind}")
    assert not floats, "\n".join(floats)

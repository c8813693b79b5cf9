"""Borrowed views (rvh/cpu/borrow.py): the kernel's arrays without numba's reference count."""

import numba as nb
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from rvh.cpu.borrow import borrowed


@intrinsic
def counted(typingctx, array):
    """Whether numba would count references to ``array`` (its meminfo is not null)."""

    def codegen(context, builder, signature, args):
        view = context.make_array(signature.args[0])(context, builder, value=args[0])
        null = ir.Constant(view.meminfo.type, None)
        return builder.icmp_unsigned("!=", view.meminfo, null)

    return types.boolean(array), codegen


@nb.njit
def store_through(array, index, value):
    view = borrowed(array)
    view[index] = value  # the caller's array sees it: the same data
    halves = view.view(np.int32)  # a view of a borrowed view is not counted either
    return counted(array), counted(view), counted(halves), halves[2 * index]


@nb.njit
def optional(array):
    return borrowed(array) is None


def test_a_borrowed_view_shares_the_data_and_is_not_counted():
    array = np.zeros(4, dtype=np.int64)
    assert store_through(array, 2, 0x1234_0000_5678) == (True, False, False, 0x5678)
    assert array[2] == 0x1234_0000_5678


def test_none_stays_none():
    assert optional(None) is True
    assert optional(np.zeros(1, dtype=np.int64)) is False

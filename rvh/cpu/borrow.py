"""Borrowed array views for the kernel: the same array without numba's reference count.

numba counts references to every array a compiled function receives, with a locked
increment on entry and a locked decrement on exit of each call: ``fast_loop`` alone takes
ten arrays, and on a Linux boot a quarter of the hart's time went to those two instructions
(docs/performance.md, "Reference counting").  ``core.run`` is the kernel's only entry from
Python, and its caller holds every array it is given until it returns, so the kernel can
work on views whose ``meminfo`` is null: numba's increment and decrement of a null
``meminfo`` is a test and a return.  A borrowed view must not outlive the call that made
it (never returned to Python, never stored anywhere); the kernel only passes them down.
"""

from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def borrowed(typingctx, array):
    """``array`` as a view that numba does not reference-count (see the module's text); None
    stays None, so optional arguments pass through."""
    if isinstance(array, types.NoneType):
        return array(array), lambda context, builder, signature, args: args[0]

    def codegen(context, builder, signature, args):
        view = context.make_array(signature.args[0])(context, builder, value=args[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen

"""Work arrays that a layer keeps between calls instead of allocating them anew.

A new array of a few megabytes is memory the operating system has to map
page by page (4 kB each) the first time it is written, and on some machines
those page faults take longer than the arithmetic done on the array. Layers
whose intermediate arrays are large (im2col's column matrix, batch norm's
centred input) therefore keep them in a ``Workspace`` and reuse them while
the shape, dtype and device stay the same. Only intermediate results live
here: whatever a layer returns is a new array, so callers may keep it.
"""

from ..backend import get_array_module


class Workspace:
    """Named scratch arrays.

    ``ws.get("cols", shape, dtype, xp)`` returns the same array on every call
    with the same shape, dtype and array module (numpy or cupy), and a new
    one, filled with zeros, otherwise.
    """

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype, xp):
        shape = tuple(int(n) for n in shape)
        buf = self._arrays.get(name)
        stale = (buf is None or buf.shape != shape or buf.dtype != dtype
                 or get_array_module(buf) is not xp)
        if stale:
            buf = self._arrays[name] = xp.zeros(shape, dtype=dtype)
        return buf

    def clear(self):
        """Forget every array (e.g. to free memory after training)."""
        self._arrays.clear()

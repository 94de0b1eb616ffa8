"""The wire format between the grader and the student's process (``runner.py``).

One message is one frame::

    header length (4 bytes, big-endian) | payload length (8 bytes, big-endian)
    header: UTF-8 JSON object
    payload: the raw bytes of every array in the message, one after the other

The header is a JSON object of plain fields (``op``, ``name``, ...) whose
``data`` field holds a value encoded by :func:`encode`. Only plain data
travels: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, lists,
tuples and dicts of those, and NumPy arrays or scalars of booleans or numbers.
Every other JSON object in ``data`` is a tag with exactly one key:

=========  ==========================================================
``t``      a tuple: ``{"t": [items]}``
``d``      a dict: ``{"d": [[key, value], ...]}`` (keys may be numbers or tuples)
``c``      a complex number: ``{"c": [real, imag]}``
``a``      an array: ``{"a": [dtype, shape]}``; its bytes come next in the payload
``h``      a handle: ``{"h": id}``, an object that stays in the student's process
``r``      a reference by name to a module-level function: ``{"r": "numpy:mean"}``
=========  ==========================================================

Nothing is ever pickled. Decoding checks every size against :class:`Bounds`
before allocating, accepts only little-endian numeric or boolean dtypes, and
requires the arrays to tile the payload exactly, so a broken or hostile frame
raises :class:`ProtocolError` instead of consuming memory or aliasing arrays.
"""

import json
import os
import select
import struct
import time
from dataclasses import dataclass

import numpy as np

_PREFIX = struct.Struct("!IQ")

#: Modules whose module-level functions may travel by name (the ``r`` tag).
REF_MODULES = ("numpy", "course_lib")

#: The dtypes an array may have on the wire (little-endian, numbers or booleans).
ALLOWED_DTYPES = frozenset(np.dtype(t).str for t in (
    "bool", "int8", "uint8", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8",
    "<f2", "<f4", "<f8", "<c8", "<c16"))


class ProtocolError(Exception):
    """A frame or value that breaks the format or its bounds."""


class PeerClosed(ProtocolError):
    """The other process closed its end (it exited or was killed)."""


class PeerTimeout(ProtocolError):
    """The other process did not answer before the deadline."""


@dataclass(frozen=True)
class Bounds:
    """Upper limits checked while decoding (and encoding) a frame."""

    max_header_bytes: int = 64 * 2**20
    max_payload_bytes: int = 256 * 2**20
    max_depth: int = 64
    max_nodes: int = 1_000_000
    max_ndim: int = 32


DEFAULT_BOUNDS = Bounds()


# ---------------------------------------------------------------------------
# Values <-> JSON tree + payload


def encode(value, on_other, bounds=DEFAULT_BOUNDS):
    """Encode ``value`` as ``(tree, buffers)``: a JSON-able tree and array bytes.

    ``on_other(obj)`` is called for anything that is not plain data and must
    return a tag (``{"h": id}`` or ``{"r": name}``) or raise ``TypeError``.
    """
    buffers = []
    count = [0]

    def enc(v, depth):
        count[0] += 1
        if depth > bounds.max_depth or count[0] > bounds.max_nodes:
            raise ProtocolError("value is nested too deeply or has too many parts")
        if isinstance(v, np.generic):  # NumPy scalars become Python scalars
            if v.dtype.kind not in "biufcU":
                return on_other(v)
            v = v.item()
        # The exact-type copies (str.__str__, int.__int__, ...) drop subclasses.
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, int):
            return int.__int__(v)
        if isinstance(v, float):
            return float.__float__(v)
        if isinstance(v, complex):
            return {"c": [float(v.real), float(v.imag)]}
        if isinstance(v, np.ndarray):
            return enc_array(v)
        if _is_gpu_array(v):
            return enc_array(v.get())
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in v]
        if isinstance(v, tuple):
            return {"t": [enc(x, depth + 1) for x in v]}
        if isinstance(v, dict):
            return {"d": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        return on_other(v)

    def enc_array(a):
        if a.dtype.kind not in "biufc" or a.dtype.fields is not None:
            return on_other(a)
        a = np.asarray(a, dtype=a.dtype.newbyteorder("<"))
        if a.ndim > bounds.max_ndim:
            raise ProtocolError(f"array has {a.ndim} dimensions (at most {bounds.max_ndim})")
        buffers.append(a.tobytes(order="C"))
        return {"a": [a.dtype.str, list(a.shape)]}

    tree = enc(value, 0)
    if sum(len(b) for b in buffers) > bounds.max_payload_bytes:
        raise ProtocolError("the arrays in this value are larger than the payload limit")
    return tree, buffers


def decode(tree, payload, on_handle, on_ref, bounds=DEFAULT_BOUNDS):
    """Rebuild a value from ``(tree, payload)``; the inverse of :func:`encode`.

    ``on_handle(id)`` and ``on_ref(name)`` turn the ``h`` and ``r`` tags into
    objects (or raise ``ProtocolError`` where they are not allowed).
    """
    if type(payload) is not bytearray:
        payload = bytearray(payload)  # writable, so decoded arrays are writable
    cursor = [0]
    count = [0]

    def dec(t, depth):
        count[0] += 1
        if depth > bounds.max_depth or count[0] > bounds.max_nodes:
            raise ProtocolError("value is nested too deeply or has too many parts")
        if t is None or type(t) in (bool, int, float, str):
            return t
        if type(t) is list:
            return [dec(x, depth + 1) for x in t]
        if type(t) is not dict or len(t) != 1:
            raise ProtocolError("malformed value in frame")
        (tag, body), = t.items()
        if tag == "t" and type(body) is list:
            return tuple(dec(x, depth + 1) for x in body)
        if tag == "d" and type(body) is list:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed dict entry in frame")
                key = dec(pair[0], depth + 1)
                try:
                    out[key] = dec(pair[1], depth + 1)
                except TypeError as exc:  # an unhashable key
                    raise ProtocolError(f"dict key cannot be used: {exc}") from None
            return out
        if tag == "c" and type(body) is list and len(body) == 2 \
                and all(type(x) in (int, float) for x in body):
            return complex(body[0], body[1])
        if tag == "a":
            return dec_array(body)
        if tag == "h" and type(body) is int:
            return on_handle(body)
        if tag == "r" and type(body) is str:
            return on_ref(body)
        raise ProtocolError(f"unknown tag {tag!r} in frame")

    def dec_array(body):
        if type(body) is not list or len(body) != 2 or type(body[0]) is not str \
                or type(body[1]) is not list:
            raise ProtocolError("malformed array in frame")
        dtype_str, shape = body
        if dtype_str not in ALLOWED_DTYPES:
            raise ProtocolError(f"array dtype {dtype_str!r} is not allowed")
        if len(shape) > bounds.max_ndim or not all(type(n) is int and n >= 0 for n in shape):
            raise ProtocolError("malformed array shape in frame")
        dtype = np.dtype(dtype_str)
        # Every extent counts, zeros aside: NumPy refuses a shape like (0, 2**63) too.
        # Checked as it grows, so no huge number is ever built.
        extent = 1
        for n in shape:
            extent *= max(n, 1)
            if extent > bounds.max_payload_bytes:
                raise ProtocolError("array shape is larger than the payload limit")
        nbytes = 0 if 0 in shape else extent * dtype.itemsize
        if nbytes > len(payload):
            raise ProtocolError("array is larger than the payload")
        start = cursor[0]
        if start + nbytes > len(payload):
            raise ProtocolError("array runs past the end of the payload")
        cursor[0] = start + nbytes
        flat = np.frombuffer(payload, dtype=dtype, count=nbytes // dtype.itemsize,
                             offset=start) if nbytes else np.zeros(0, dtype)
        return flat.reshape(shape)

    value = dec(tree, 0)
    if cursor[0] != len(payload):
        raise ProtocolError("payload holds bytes that belong to no array")
    return value


def _is_gpu_array(v):
    return type(v).__module__.split(".")[0] == "cupy" and hasattr(v, "get")


# ---------------------------------------------------------------------------
# Frames <-> bytes on a file descriptor


def pack(header, buffers=(), bounds=DEFAULT_BOUNDS):
    """The bytes of one frame: ``header`` (a JSON-able dict) and array ``buffers``."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode("utf-8")
    size = sum(len(b) for b in buffers)
    if len(head) > bounds.max_header_bytes:
        raise ProtocolError("message header is larger than the limit")
    if size > bounds.max_payload_bytes:
        raise ProtocolError("message payload is larger than the limit")
    return b"".join([_PREFIX.pack(len(head), size), head, *buffers])


def unpack_header(head, bounds=DEFAULT_BOUNDS):
    """Parse a frame's header bytes into a dict, or raise ProtocolError."""
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"message header is not valid JSON: {type(exc).__name__}") from None
    if type(header) is not dict:
        raise ProtocolError("message header is not a JSON object")
    return header


def write_frame(fd, frame, deadline=None):
    """Write all of ``frame`` to ``fd``, waiting at most until ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value; None waits forever (the
    runner's side). Raises PeerClosed or PeerTimeout.
    """
    view = memoryview(frame)
    while view:
        if deadline is not None:
            _wait(fd, deadline, write=True)
        try:
            n = os.write(fd, view[:1 << 20])
        except BlockingIOError:
            continue
        except (BrokenPipeError, OSError) as exc:
            raise PeerClosed(f"the other process closed the channel ({exc.strerror})") from None
        view = view[n:]


def read_frame(fd, deadline=None, bounds=DEFAULT_BOUNDS):
    """Read one frame from ``fd``; return ``(header dict, payload bytes)``."""
    head_len, payload_len = _PREFIX.unpack(_read_exact(fd, _PREFIX.size, deadline))
    if head_len > bounds.max_header_bytes:
        raise ProtocolError(f"message header of {head_len} bytes is larger than the limit")
    if payload_len > bounds.max_payload_bytes:
        raise ProtocolError(f"message payload of {payload_len} bytes is larger than the limit")
    header = unpack_header(_read_exact(fd, head_len, deadline), bounds)
    payload = _read_exact(fd, payload_len, deadline)
    return header, payload


def _read_exact(fd, n, deadline):
    """Exactly ``n`` bytes from ``fd``, as a bytearray filled in place (no second copy)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            _wait(fd, deadline, write=False)
        try:
            count = os.readv(fd, [view[got:got + (1 << 20)]])
        except BlockingIOError:
            continue
        except OSError as exc:
            raise PeerClosed(f"the other process closed the channel ({exc.strerror})") from None
        if not count:
            raise PeerClosed("the other process closed the channel")
        got += count
    view.release()
    return buf


def _wait(fd, deadline, write):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PeerTimeout("no answer before the deadline")
    try:
        ready = select.select([], [fd], [], remaining) if write else \
            select.select([fd], [], [], remaining)
    except (ValueError, OSError) as exc:
        raise PeerClosed(f"the channel is closed ({exc})") from None
    if not any(ready):
        raise PeerTimeout("no answer before the deadline")


# ---------------------------------------------------------------------------
# One call: a header plus one encoded value


def send(fd, header, value=None, on_other=None, deadline=None, bounds=DEFAULT_BOUNDS):
    """Send ``header`` with ``value`` encoded into its ``data`` field."""
    tree, buffers = encode(value, on_other or _refuse, bounds)
    write_frame(fd, pack({**header, "data": tree}, buffers, bounds), deadline)


def receive(fd, on_handle=None, on_ref=None, deadline=None, bounds=DEFAULT_BOUNDS):
    """Receive one message; return ``(header, value)`` with ``data`` decoded."""
    header, payload = read_frame(fd, deadline, bounds)
    try:
        value = decode(header.pop("data", None), payload, on_handle or _no_handle,
                       on_ref or _no_ref, bounds)
    except ProtocolError:
        raise
    except (ValueError, TypeError, OverflowError, MemoryError, RecursionError) as exc:
        # Whatever a crafted value breaks in NumPy or Python is the sender's fault, not ours.
        raise ProtocolError(f"malformed value in frame ({type(exc).__name__})") from None
    return header, value


def _refuse(obj):
    raise TypeError(f"{type(obj).__name__} objects cannot be sent to the other process")


def _no_handle(ident):
    raise ProtocolError("handles are not accepted here")


def _no_ref(name):
    raise ProtocolError("references are not accepted here")

"""The wire format between the grader and the student's process (autograde.protocol)."""

import json
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from autograde import protocol
from autograde.protocol import Bounds, ProtocolError


def roundtrip(value, on_other=None, on_handle=None, on_ref=None):
    tree, buffers = protocol.encode(value, on_other or protocol._refuse)
    # Through real JSON text, as on the wire.
    tree = json.loads(json.dumps(tree))
    return protocol.decode(tree, b"".join(buffers), on_handle or protocol._no_handle,
                           on_ref or protocol._no_ref)


def assert_same(a, b):
    """Equal values and equal Python/NumPy types all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


dtypes = st.sampled_from(["bool", "int8", "uint8", "int16", "int32", "int64", "uint64",
                          "float16", "float32", "float64", "complex64", "complex128"])
arrays = dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4,
                                                                  min_side=0, max_side=5)))
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() \
    | st.complex_numbers(allow_nan=False)
keys = st.none() | st.booleans() | st.integers() | st.text()
values = st.recursive(scalars | arrays, lambda inner: st.lists(inner, max_size=4)
                      | st.tuples(inner, inner) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(values)
def test_plain_data_roundtrips_with_exact_types(value):
    assert_same(roundtrip(value), value)


def test_numpy_scalars_become_python_scalars_and_arrays_are_writable():
    out = roundtrip([np.float32(1.5), np.int64(3), np.bool_(True), np.arange(6.0).reshape(2, 3)])
    assert out[:3] == [1.5, 3, True] and [type(x) for x in out[:3]] == [float, int, bool]
    out[3][0, 0] = 7.0  # decoded arrays are independent and writable
    assert out[3][0, 0] == 7.0


def test_non_contiguous_and_big_endian_arrays_are_normalised():
    a = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]
    out = roundtrip(a)
    assert out.dtype == np.dtype("<f8")
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("value", [np.array([object()], dtype=object),
                                   np.zeros(2, dtype=[("a", "f8")]),
                                   {1, 2}, b"bytes", lambda x: x])
def test_anything_else_goes_through_on_other(value):
    seen = []

    def on_other(obj):
        seen.append(obj)
        return {"h": 7}

    assert roundtrip([value], on_other, on_handle=lambda i: ("handle", i)) == [("handle", 7)]
    assert seen[0] is value
    with pytest.raises(TypeError):
        protocol.encode(value, protocol._refuse)


def test_references_and_handles_need_permission():
    with pytest.raises(ProtocolError):
        protocol.decode({"h": 1}, b"", protocol._no_handle, protocol._no_ref)
    with pytest.raises(ProtocolError):
        protocol.decode({"r": "os:system"}, b"", protocol._no_handle, protocol._no_ref)


@pytest.mark.parametrize("tree, payload", [
    ({"a": ["|O", [1]]}, b"\0" * 8),                       # object dtype
    ({"a": [">f8", [1]]}, b"\0" * 8),                      # big-endian
    ({"a": ["<f8", [2]]}, b"\0" * 8),                      # payload too short
    ({"a": ["<f8", [1]]}, b"\0" * 16),                     # bytes left over
    ({"a": ["<f8", [-1]]}, b""),                           # negative size
    ({"a": ["<f8", [2**40, 2**40]]}, b""),                 # absurd size, no allocation
    ({"a": ["<f8", [0, 2**63]]}, b""),                     # empty, but no NumPy shape
    ({"a": ["<f8", [0, 2**62, 4]]}, b""),                  # empty, extents overflow
    ({"a": ["<i8", [0, 10**100]]}, b""),                   # a number no C integer holds
    ({"a": ["<f8", [1] * 40]}, b"\0" * 8),                 # too many dimensions
    ({"x": 1}, b""),                                       # unknown tag
    ({"t": [1], "d": []}, b""),                            # two keys
    ({"d": [[[1], 2]]}, b""),                              # unhashable key
    ({"c": ["1", 2]}, b""),                                # complex of strings
    ({"pickle": "gASVAAAAAAAAAACMCGJ1aWx0aW5zlC4="}, b""),   # no pickle, ever
])
def test_malformed_values_are_rejected(tree, payload):
    with pytest.raises(ProtocolError):
        protocol.decode(tree, payload, protocol._no_handle, protocol._no_ref)


def test_depth_and_node_bounds():
    deep = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ProtocolError):
        protocol.decode(deep, b"", protocol._no_handle, protocol._no_ref)
    with pytest.raises(ProtocolError):
        protocol.encode(deep, protocol._refuse)
    small = Bounds(max_nodes=10)
    with pytest.raises(ProtocolError):
        protocol.decode(list(range(20)), b"", protocol._no_handle, protocol._no_ref, small)


def pipe():
    r, w = os.pipe()
    return r, w


def test_frames_roundtrip_over_a_pipe():
    r, w = pipe()
    try:
        x = np.random.default_rng(0).normal(size=(50, 40))
        protocol.send(w, {"op": "call", "target": 3}, [[x, "a"], {"k": (1, None)}])
        header, value = protocol.receive(r, deadline=time.monotonic() + 5)
        assert header == {"op": "call", "target": 3}
        np.testing.assert_array_equal(value[0][0], x)
        assert value[0][1] == "a" and value[1] == {"k": (1, None)}
    finally:
        os.close(r)
        os.close(w)


def test_closed_and_silent_peers():
    r, w = pipe()
    with pytest.raises(protocol.PeerTimeout):
        protocol.read_frame(r, deadline=time.monotonic() + 0.1)
    os.close(w)
    with pytest.raises(protocol.PeerClosed):
        protocol.read_frame(r, deadline=time.monotonic() + 1)
    os.close(r)


@pytest.mark.parametrize("prefix, body", [
    (struct.pack("!IQ", 2**31, 0), b""),                   # header length over the bound
    (struct.pack("!IQ", 2, 2**40), b"{}"),                 # payload length over the bound
    (struct.pack("!IQ", 4, 0), b"\xff\xfe{}"),             # not UTF-8
    (struct.pack("!IQ", 2, 0), b"[]"),                     # not an object
    (struct.pack("!IQ", 5, 0), b"{\"a\":"),                # not JSON
])
def test_bad_frames_are_rejected_before_reading_more(prefix, body):
    r, w = pipe()
    try:
        os.write(w, prefix + body)
        with pytest.raises(ProtocolError):
            protocol.read_frame(r, deadline=time.monotonic() + 1, bounds=Bounds(
                max_header_bytes=2**20, max_payload_bytes=2**20))
    finally:
        os.close(r)
        os.close(w)


def test_payload_bound_applies_when_encoding():
    with pytest.raises(ProtocolError):
        protocol.encode(np.zeros(1000), protocol._refuse, Bounds(max_payload_bytes=100))


@pytest.mark.parametrize("data", [{"a": ["<f8", [0, 2**63]]}, {"d": [[{"a": ["<f8", [0]]}, 1]]},
                                  {"a": ["<f8", [0, 2**62, 4]]}])
def test_a_crafted_reply_is_a_protocol_error_when_received(data):
    # Whatever NumPy or Python refuse while a frame is decoded reaches the
    # reader as a ProtocolError, never as another exception.
    r, w = pipe()
    try:
        os.write(w, protocol.pack({"ok": True, "data": data}))
        with pytest.raises(ProtocolError):
            protocol.receive(r, deadline=time.monotonic() + 5)
    finally:
        os.close(r)
        os.close(w)


def test_a_large_payload_is_read_without_a_second_copy():
    import tracemalloc
    x = np.arange(2**20, dtype=np.float64)  # 8 MiB
    r, w = pipe()
    frame = protocol.pack({"op": "x", "data": protocol.encode(x, protocol._refuse)[0]},
                          [x.tobytes()])
    import threading
    writer = threading.Thread(target=protocol.write_frame, args=(w, frame))
    writer.start()
    try:
        tracemalloc.start()
        header, value = protocol.receive(r, deadline=time.monotonic() + 10)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        writer.join()
        os.close(r)
        os.close(w)
    np.testing.assert_array_equal(value, x)
    assert value.flags.writeable
    assert peak < 1.5 * x.nbytes, peak

"""The frame format between the sandbox and the parent: everything plain round-trips, and a frame
a hostile child writes by hand decodes to plain, dense, bounded data or is refused (WireRefused),
never anything else and never a large allocation."""
from __future__ import annotations

import io
import json
import random
import struct

import pytest
import torch

from grader.sandbox import wire


def frame(header: dict, blobs: bytes = b"") -> bytearray:
    """A payload as a hostile child could write it, bypassing `pack`."""
    text = json.dumps(header).encode()
    text += b" " * (-(4 + len(text)) % wire.ALIGN)
    return bytearray(struct.pack(">I", len(text)) + text + blobs)


def test_plain_values_round_trip():
    value = {"a": (torch.arange(6, dtype=torch.float64).reshape(2, 3).t(), [1, 2.5, None, "s", True]),
             "nan": float("nan"), "bool": torch.tensor([True, False]), "empty": torch.zeros(0, 4),
             "scalar": torch.tensor(3.0, dtype=torch.bfloat16), "nested": {"x": [torch.ones(2, dtype=torch.int64)]}}
    back = wire.unpack(bytearray(wire.pack(wire.plain(value))))
    assert torch.equal(back["a"][0], value["a"][0]) and back["a"][0].is_contiguous()
    assert type(back["a"]) is tuple and back["a"][1] == [1, 2.5, None, "s", True]
    assert back["nan"] != back["nan"]
    assert torch.equal(back["bool"], value["bool"]) and back["empty"].shape == (0, 4)
    assert back["scalar"].dtype == torch.bfloat16 and torch.equal(back["nested"]["x"][0], torch.ones(2, dtype=torch.int64))


@pytest.mark.parametrize("make, needle", [
    (lambda: torch.sparse_coo_tensor(torch.tensor([[0, 9]]), torch.ones(2), (3,), check_invariants=False), "sparse"),
    (lambda: torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8), "quantized"),
    (lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]), "nested"),
    (lambda: torch.empty(3, device="meta"), "meta"),
    (lambda: torch.zeros(1, dtype=torch.float64).expand(10**10), "elements"),
    (lambda: torch.ones(2, dtype=torch.complex32), "dtype"),
])
def test_odd_tensors_are_refused_in_the_child_with_a_message(make, needle):
    with pytest.raises(wire.UnsupportedValue, match=needle):
        wire.plain(make())


def test_a_zero_stride_claim_cannot_make_the_parent_allocate():
    # a [2**30, 2**10] float64 tensor (8 TiB) backed by 16 bytes
    payload = frame({"v": {"X": 0}, "t": [["float64", [2**30, 2**10]]]}, b"\0" * 16)
    with pytest.raises(wire.WireRefused, match="more than the grader accepts|missing"):
        wire.unpack(payload)


@pytest.mark.parametrize("header", [
    {"v": {"X": 0}, "t": [["sparse_coo", [3]]]},
    {"v": {"X": 0}, "t": [["float64", [-1]]]},
    {"v": {"X": 0}, "t": [["float64", [1] * 40]]},
    {"v": {"X": 3}, "t": []},
    {"v": {"Q": 1}, "t": []},
    {"v": {"D": [[1, 2]]}, "t": []},
    {"t": []},
    [],
])
def test_malformed_headers_are_refused(header):
    with pytest.raises(wire.WireRefused):
        wire.unpack(frame(header, b"\0" * 64))


def test_deep_nesting_is_refused_not_a_recursion_error():
    deep = b"[" * 1_000_000 + b"]" * 1_000_000
    payload = bytearray(struct.pack(">I", len(deep)) + deep)
    with pytest.raises(wire.WireRefused):
        wire.unpack(payload)
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    with pytest.raises(wire.WireRefused, match="nested"):
        wire.unpack(frame({"v": nested, "t": []}))


def test_a_torch_save_payload_is_not_even_read():
    buffer = io.BytesIO()
    torch.save(torch.sparse_coo_tensor(torch.tensor([[0, 10**9]]), torch.ones(2), (3,), check_invariants=False), buffer)
    with pytest.raises(wire.WireRefused):
        wire.unpack(bytearray(buffer.getvalue()))


def test_bool_bytes_other_than_0_and_1_become_plain_bools():
    payload = frame({"v": {"X": 0}, "t": [["bool", [4]]]}, bytes([0, 1, 7, 255]) + b"\0" * 12)
    assert wire.unpack(payload).tolist() == [False, True, True, True]


def test_random_corruptions_only_ever_refuse():
    rng = random.Random(182)
    good = wire.pack({"x": torch.randn(3, 4, dtype=torch.float64), "y": [1, (2, "z")], "b": torch.ones(2, dtype=torch.bool)})
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        try:
            value = wire.unpack(data)
        except wire.WireRefused:
            continue
        # whatever decodes is plain, dense and small
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, torch.Tensor):
                assert type(item) is torch.Tensor and item.layout == torch.strided and item.numel() <= 64
            elif isinstance(item, (list, tuple)):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            else:
                assert item is None or type(item) in (bool, int, float, str)

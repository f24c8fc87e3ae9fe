"""Values across the process boundary: a format that can only ever decode to plain data.

A frame is a JSON header plus the raw bytes of each tensor, like safetensors:

    u64 length | u32 header length | header JSON | padding to 16 | tensor bytes (each padded to 16)
    header: {"v": <value>, "t": [[dtype, shape], ...]}
    value:  JSON null/bool/number/string, a list, or a one-key object:
            {"T": [...]} tuple, {"D": [[key, value], ...]} dict with str keys, {"X": i} tensor i

The parent never runs `torch.load` (or anything else that interprets types) on what a child
sends: `unpack` checks every dtype, shape and byte count against the frame and the element
budget before a tensor exists, and then builds each one itself as a dense, contiguous CPU
tensor over the frame's bytes. So a child that writes its own frames to the socket can send
wrong values, but never a sparse, quantized, nested, strided-over-nothing or huge tensor.

`encode`/`decode` (torch.save) are for trusted staff data only: golden files and cache keys.
"""
from __future__ import annotations

import io
import json
import math
import socket
import struct
import time

import torch

_LENGTH = struct.Struct(">Q")
_HEADER_LENGTH = struct.Struct(">I")
ALIGN = 16
MAX_FRAME_BYTES = 32 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_DIMS = 16

_SCALARS = (str, int, float, bool, type(None))
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)}


class WireError(Exception):
    """A frame could not be read: the peer closed, timed out, or sent garbage."""


class WireTimeout(WireError):
    pass


class WireClosed(WireError):
    pass


class WireRefused(WireError):
    """A complete frame that breaks the format's rules; the message is fit for a student."""


class UnsupportedValue(TypeError):
    """A value of a type that may not cross the boundary (said in student terms)."""


# ---- child side: a student's value as plain data --------------------------------------------

def _check_tensor_kind(value: torch.Tensor, path: str) -> None:
    if value.layout != torch.strided:
        raise UnsupportedValue(f"{path} is a tensor with layout {value.layout} (sparse); return a dense "
                               "torch.Tensor (e.g. with .to_dense())")
    if value.is_quantized or value.is_nested or value.device.type == "meta":
        kind = "quantized" if value.is_quantized else "nested" if value.is_nested else "meta"
        raise UnsupportedValue(f"{path} is a {kind} tensor; return a plain dense torch.Tensor")
    if str(value.dtype).removeprefix("torch.") not in DTYPES:
        raise UnsupportedValue(f"{path} has dtype {value.dtype}, which the grader does not accept")
    if value.numel() * value.element_size() > MAX_FRAME_BYTES:
        raise UnsupportedValue(f"{path} has {value.numel()} elements (shape {list(value.shape)}), more than the "
                               f"grader accepts ({MAX_FRAME_BYTES // 2**20} MiB)")


def plain(value, path: str = "output"):
    """Convert a student's return value to plain data, or explain why not.

    Tensor subclasses (which can override comparison or `__torch_function__`) and arbitrary
    objects are refused here, with a message naming their type.
    """
    kind = type(value)
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        _check_tensor_kind(value, path)
        # clone: a view would otherwise carry its whole underlying storage
        return value.detach().cpu().clone()
    if isinstance(value, torch.Tensor):
        raise UnsupportedValue(
            f"{path} is a {kind.__module__}.{kind.__qualname__}, a subclass of torch.Tensor; "
            "return a plain torch.Tensor"
        )
    if kind in _SCALARS:
        return value
    if kind in (tuple, list):
        return kind(plain(v, f"{path}[{i}]") for i, v in enumerate(value))
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise UnsupportedValue(f"{path} has a key of type {type(k).__name__}; keys must be str")
            out[k] = plain(v, f"{path}[{k!r}]")
        return out
    raise UnsupportedValue(f"{path} is a {kind.__module__}.{kind.__qualname__}, expected a torch.Tensor")


# ---- the frame format -----------------------------------------------------------------------

def _padding(n: int) -> int:
    return -n % ALIGN


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = t.detach().cpu().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes()


def pack(obj) -> bytes:
    """The payload of one frame (without the length prefix). Values must be plain data."""
    tensors: list[torch.Tensor] = []

    def tree(value, depth=0):
        if depth > MAX_DEPTH:
            raise UnsupportedValue(f"the value is nested more than {MAX_DEPTH} levels deep")
        kind = type(value)
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            tensors.append(value)
            return {"X": len(tensors) - 1}
        if kind is float and not math.isfinite(value):
            return {"F": repr(value)}
        if kind in _SCALARS:
            return value
        if kind is list:
            return [tree(v, depth + 1) for v in value]
        if kind is tuple:
            return {"T": [tree(v, depth + 1) for v in value]}
        if kind is dict:
            if not all(type(k) is str for k in value):
                raise UnsupportedValue("dict keys must be str")
            return {"D": [[k, tree(v, depth + 1)] for k, v in value.items()]}
        raise UnsupportedValue(f"a {kind.__name__} cannot cross the boundary")

    value = tree(obj)
    blobs = [_tensor_bytes(t) for t in tensors]
    meta = [[str(t.dtype).removeprefix("torch."), list(t.shape)] for t in tensors]
    header = json.dumps({"v": value, "t": meta}, separators=(",", ":"), allow_nan=False).encode()
    header += b" " * _padding(_HEADER_LENGTH.size + len(header))
    parts = [_HEADER_LENGTH.pack(len(header)), header]
    for blob in blobs:
        parts += [blob, b"\0" * _padding(len(blob))]
    return b"".join(parts)


def _refuse(why: str):
    raise WireRefused(why)


def _shape(shape) -> tuple[int, ...]:
    if type(shape) is not list or len(shape) > MAX_DIMS or not all(type(n) is int and 0 <= n < 2**40 for n in shape):
        _refuse(f"a tensor shape must be a list of at most {MAX_DIMS} non-negative sizes")
    return tuple(shape)


def _tensors(meta, buffer: bytearray, start: int, max_elements: int) -> list[torch.Tensor]:
    """Every tensor checked (dtype, shape, bytes present, element budget) before it is built."""
    if type(meta) is not list:
        _refuse("the tensor table is not a list")
    tensors, offset, elements = [], start, 0
    for entry in meta:
        if type(entry) is not list or len(entry) != 2 or type(entry[0]) is not str or entry[0] not in DTYPES:
            _refuse(f"a tensor of an unsupported kind ({str(entry)[:80]}); accepted dtypes: {', '.join(DTYPES)}")
        dtype, shape = DTYPES[entry[0]], _shape(entry[1])
        numel = math.prod(shape)
        elements += numel
        if elements > max_elements:
            _refuse(f"the result holds more than {max_elements} tensor elements, more than the grader accepts")
        nbytes = numel * dtype.itemsize
        if offset + nbytes > len(buffer):
            _refuse("a tensor's data is missing from the frame")
        if numel == 0:
            tensors.append(torch.empty(shape, dtype=dtype))
        elif dtype is torch.bool:
            # any byte other than 0/1 in a bool tensor is undefined behaviour in torch's kernels
            raw = torch.frombuffer(buffer, dtype=torch.uint8, count=numel, offset=offset)
            tensors.append((raw != 0).reshape(shape))
        else:
            tensors.append(torch.frombuffer(buffer, dtype=dtype, count=numel, offset=offset).reshape(shape))
        offset += nbytes + _padding(nbytes)
    if offset < len(buffer) - ALIGN:
        _refuse("the frame holds bytes that no tensor claims")
    return tensors


def _value(node, tensors: list, depth: int):
    if depth > MAX_DEPTH:
        _refuse(f"the result is nested more than {MAX_DEPTH} levels deep")
    kind = type(node)
    if kind in _SCALARS:
        return node
    if kind is list:
        return [_value(v, tensors, depth + 1) for v in node]
    if kind is not dict or len(node) != 1:
        _refuse("malformed value")
    (tag, body), = node.items()
    if tag == "X" and type(body) is int and 0 <= body < len(tensors):
        return tensors[body]
    if tag == "F" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "T" and type(body) is list:
        return tuple(_value(v, tensors, depth + 1) for v in body)
    if tag == "D" and type(body) is list:
        out = {}
        for item in body:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not str:
                _refuse("malformed dict entry")
            out[item[0]] = _value(item[1], tensors, depth + 1)
        return out
    _refuse("malformed value")


def unpack(buffer: bytearray, max_elements: int = MAX_FRAME_BYTES) -> object:
    """Decode one payload; anything outside the format raises WireRefused (never another error)."""
    if len(buffer) < _HEADER_LENGTH.size:
        _refuse("a truncated frame")
    (header_length,) = _HEADER_LENGTH.unpack_from(buffer)
    end = _HEADER_LENGTH.size + header_length
    if header_length > MAX_HEADER_BYTES or end > len(buffer):
        _refuse("a frame header of an impossible length")
    try:
        header = json.loads(bytes(buffer[_HEADER_LENGTH.size:end]).decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as exc:
        _refuse(f"an unreadable frame header ({type(exc).__name__})")
    if type(header) is not dict or set(header) != {"v", "t"}:
        _refuse("a frame header without its value and tensor table")
    tensors = _tensors(header["t"], buffer, end + _padding(end), max_elements)
    return _value(header["v"], tensors, 0)


# ---- sockets --------------------------------------------------------------------------------

def send(sock: socket.socket, obj) -> None:
    payload = pack(obj)
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_into(sock: socket.socket, buffer: memoryview, deadline: float | None) -> None:
    got = 0
    while got < len(buffer):
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout("timed out")
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            n = sock.recv_into(buffer[got:], min(len(buffer) - got, 1 << 20))
        except socket.timeout:
            raise WireTimeout("timed out") from None
        except OSError as exc:
            raise WireClosed(str(exc)) from None
        if not n:
            raise WireClosed("peer closed the connection")
        got += n


def recv(sock: socket.socket, deadline: float | None = None, max_bytes: int = MAX_FRAME_BYTES):
    prefix = bytearray(_LENGTH.size)
    _recv_into(sock, memoryview(prefix), deadline)
    (length,) = _LENGTH.unpack(prefix)
    if length > max_bytes:
        raise WireRefused(f"a result of {length} bytes, more than the grader accepts ({max_bytes} bytes)")
    buffer = bytearray(length)
    _recv_into(sock, memoryview(buffer), deadline)
    return unpack(buffer, max_elements=max_bytes)


# ---- trusted staff data (golden files, cache keys) ------------------------------------------

def encode(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def decode(data: bytes, trusted: bool = False):
    """Only for the grader's own files: never call this on bytes a child produced."""
    if not trusted:
        raise ValueError("wire.decode is for trusted staff data only; child frames go through unpack()")
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")

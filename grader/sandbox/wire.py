"""Values across the process boundary: length-prefixed frames of `torch.save` bytes.

The parent decodes with `torch.load(weights_only=True)`, which refuses arbitrary classes,
and then checks the exact type of every value again: a frame from the child is untrusted.
"""
from __future__ import annotations

import io
import socket
import struct
import time

import torch

_HEADER = struct.Struct(">Q")
MAX_FRAME_BYTES = 256 * 1024 * 1024

_SCALARS = (str, int, float, bool, type(None))


class WireError(Exception):
    """A frame could not be read: the peer closed, timed out, or sent garbage."""


class WireTimeout(WireError):
    pass


class WireClosed(WireError):
    pass


class UnsupportedValue(TypeError):
    """A value of a type that may not cross the boundary (said in student terms)."""


def plain(value, path: str = "output"):
    """Child side: convert a student's return value to plain data, or explain why not.

    Tensor subclasses (which can override comparison or `__torch_function__`) and arbitrary
    objects are refused here, with a message naming their type.
    """
    kind = type(value)
    if kind is torch.Tensor or kind is torch.nn.Parameter:
        # clone: saving a view would ship its whole underlying storage
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


def check_plain(value, path: str = "value"):
    """Parent side: verify that decoded data holds only exact plain types."""
    kind = type(value)
    if kind is torch.Tensor or kind in _SCALARS:
        return value
    if kind in (tuple, list):
        for i, v in enumerate(value):
            check_plain(v, f"{path}[{i}]")
        return value
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise WireError(f"{path}: non-str key")
            check_plain(v, f"{path}[{k!r}]")
        return value
    raise WireError(f"{path}: type {kind.__name__} may not cross the boundary")


def encode(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def decode(data: bytes, trusted: bool = False):
    obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    return obj if trusted else check_plain(obj)


def send(sock: socket.socket, obj) -> None:
    payload = encode(obj)
    sock.sendall(_HEADER.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout("timed out")
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            chunk = sock.recv(min(n, 1 << 20))
        except socket.timeout:
            raise WireTimeout("timed out") from None
        except OSError as exc:
            raise WireClosed(str(exc)) from None
        if not chunk:
            raise WireClosed("peer closed the connection")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(sock: socket.socket, deadline: float | None = None, trusted: bool = False,
         max_bytes: int = MAX_FRAME_BYTES):
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size, deadline))
    if length > max_bytes:
        raise WireError(f"frame of {length} bytes exceeds the limit of {max_bytes}")
    data = _recv_exact(sock, length, deadline)
    try:
        return decode(data, trusted=trusted)
    except WireError:
        raise
    except Exception as exc:  # torch.load refuses malformed or forbidden content
        raise WireError(f"undecodable frame: {exc}") from None

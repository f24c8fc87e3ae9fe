"""Read a file of self-reported values in the sandbox child (CS182's `autograder.pt`).

A course notebook saves its own outputs with `torch.save({'output': {...}})` and the student
uploads the file. It is the student's data, so it is opened only here, in the sandboxed child,
under the child's limits, with `torch.load(weights_only=True)`: a pickle that names any other
global than tensors, containers and numpy's number scalars is refused before anything runs. One
entry at a time crosses to the parent, as plain data through the wire (grader/sandbox/wire.py).

numpy's scalars are allowed because the course's notebooks report accuracies as `np.mean(...)`,
a numpy.float64: a scalar is rebuilt from a dtype and its raw bytes, nothing else. They are
turned into Python numbers before they leave. Both spellings of the scalar's module are
accepted: files written by numpy 1.x name `numpy.core.multiarray.scalar`, by 2.x `numpy._core`.
"""
from __future__ import annotations

import os
import pickle

import numpy as np
import torch

MAX_BYTES = 32 * 1024 * 1024   # below the 50 MB a whole submission may have
_NUMBER_DTYPES = [getattr(np.dtypes, name) for name in (
    "Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "Int16DType", "Int8DType",
    "UInt8DType", "BoolDType") if hasattr(np.dtypes, name)]


def _scalar_globals() -> list:
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar"),
            np.dtype, *_NUMBER_DTYPES]


class ReportedFileError(Exception):
    """The file cannot be read as self-reported values; the message is for the student."""


def _plain_numbers(value, depth: int = 0):
    """numpy scalars -> Python numbers, anywhere in tuples, lists and str-keyed dicts."""
    if depth > 32:
        raise ReportedFileError("its values are nested more than 32 levels deep")
    if isinstance(value, np.generic):
        return value.item()
    if type(value) in (tuple, list):
        return type(value)(_plain_numbers(v, depth + 1) for v in value)
    if type(value) is dict:
        return {k: _plain_numbers(v, depth + 1) for k, v in value.items()}
    return value


def load(name: str, max_bytes: int = MAX_BYTES) -> dict:
    """The `output` dict of the file `name` in the working directory (the submission's copy)."""
    if os.path.basename(name) != name or name in ("", ".", ".."):
        raise ReportedFileError(f"{name!r} is not a plain file name")
    try:
        size = os.lstat(name).st_size
    except FileNotFoundError:
        raise ReportedFileError(f"{name} is not in the submission") from None
    if not os.path.isfile(name) or os.path.islink(name):
        raise ReportedFileError(f"{name} is not a regular file")
    if size > max_bytes:
        raise ReportedFileError(f"{name} has {size:,} bytes, more than the {max_bytes // 2**20} MiB the grader reads")
    try:
        with torch.serialization.safe_globals(_scalar_globals()):
            data = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if isinstance(exc, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed"):
            # torch's message: a paragraph of advice, the reason, a pointer to its documentation
            why = next((line for line in lines[1:] if not line.startswith(("Check the documentation", "(1)", "(2)"))),
                       "")
            reason = ("it holds objects other than tensors, numbers, strings, lists, tuples and dicts "
                      f"({why.removeprefix('WeightsUnpickler error: ')[:300]})")
        else:
            reason = (lines[-1] if lines else "") or type(exc).__name__
        raise ReportedFileError(f"{name} could not be read with torch.load(weights_only=True): {reason[:500]}") from None
    if type(data) is not dict or type(data.get("output")) is not dict:
        raise ReportedFileError(f"{name} is not what the notebook saves: expected torch.save({{'output': {{...}}}}), "
                                f"got {type(data).__name__}" + (f" with keys {sorted(map(str, data))[:10]}"
                                                                if type(data) is dict else ""))
    return data["output"]


def entry(name: str, key: str, max_bytes: int = MAX_BYTES) -> dict:
    """{"keys": the file's keys, "found": bool, "value": the entry as plain data}, or
    {"error": why the file cannot be read}."""
    try:
        output = load(name, max_bytes)
        keys = sorted(str(k) for k in output)[:200]
        if key not in output:
            return {"keys": keys, "found": False, "value": None}
        return {"keys": keys, "found": True, "value": _plain_numbers(output[key])}
    except ReportedFileError as exc:
        return {"error": str(exc)}
    except RecursionError:
        return {"error": f"{name} is nested too deeply to read"}

"""Deterministic complexity: count the work and memory of the operations a call dispatches.

`OperationCounter` sits at torch's dispatch level, so it sees every aten operation however the
student wrote it (einsum, @, loops, in-place ops). Work is multiply-adds for matrix products
and output elements for everything else; memory is the largest storage any operation
allocates (views share their base's storage and so cost nothing). Fitting log(count) against
log(N) over several N gives a growth exponent that does not depend on the machine's speed.

Counting inside the student's process would let the student's code switch the counter off or
edit its totals. So the child only *records* the operations its call dispatched
(`OperationRecorder`: a trace of aten ops over tensor references), and the trusted side
*replays* that trace on its own copy of the inputs under its own counter (`replay`), in a
bounded helper process. The replayed output is compared with the expected one: a trace that
does not compute the right answer earns nothing, so the counts the verdict rests on are
those of a correct computation that the grader itself ran. Tensors that enter the trace from
outside any recorded operation (numpy, or work done with the recorder switched off) are
constants: they are counted, and constants that grow with N fail the case, since their work
was not observed.
"""
from __future__ import annotations

import json
import math
import re
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Operations whose work exceeds both what they read and what they write: (a @ b, a . b, ...)
# contracts over the last dim of its first matrix operand; a convolution over its kernel.
# pairwise distances (cdist) contract over the feature dimension like a matrix product
_CONTRACTIONS = {aten.mm.default, aten.bmm.default, aten.addmm.default, aten.baddbmm.default,
                 aten.addbmm.default, aten.mv.default, aten.addmv.default, aten.dot.default, aten.vdot.default,
                 aten._cdist_forward.default, aten._euclidean_dist.default}
_FIRST_OPERAND = {aten.addmm.default: 1, aten.baddbmm.default: 1, aten.addbmm.default: 1, aten.addmv.default: 1}


def _tensors(values):
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value)


def _work(func, args, outputs: list) -> int:
    """Every element an op writes or reads (logically: reading an expanded view costs its full
    size), and the multiply-adds of a contraction or a convolution."""
    written = sum(t.numel() for t in outputs)
    touched = max(written, max((t.numel() for t in _tensors(args)), default=0))
    if func in _CONTRACTIONS:
        a = args[_FIRST_OPERAND.get(func, 0)]
        return max(touched, 2 * written * a.shape[-1])
    if func is aten.convolution.default:
        return max(touched, 2 * max(written, args[0].numel()) * math.prod(args[1].shape[1:]))
    return touched


class _EagerMode(TorchDispatchMode):
    """A dispatch mode that never runs under torch.compile. By default torch wraps a mode's
    __torch_dispatch__ in dynamo's `disable`, which imports torch._dynamo on the first operation:
    about 1 s and 34 MB in every worker and helper that counts or records, for nothing here."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False


class OperationCounter(_EagerMode):
    def __init__(self):
        super().__init__()
        self.work = 0
        self.peak_bytes = 0
        self.operations = 0

    def count(self, func, args, out) -> None:
        self.operations += 1
        if getattr(func, "is_view", False):
            return
        outputs = [out] if type(out) is torch.Tensor else list(_tensors(out if isinstance(out, (tuple, list)) else (out,)))
        for t in outputs:
            self.peak_bytes = max(self.peak_bytes, t.untyped_storage().nbytes())
        self.work += _work(func, args, outputs)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.count(func, args, out)
        return out


def growth_exponent(sizes: list[int], counts: list[float]) -> float:
    """Least-squares slope of log(count) against log(size)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(c, 1)) for c in counts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


# ---- which operations a trace may hold ------------------------------------------------------

# Common operations without the core/pointwise tags that are still pure math. Composite ones
# (einsum, matmul, softmax, ...) are absent on purpose: an honest recording never holds them,
# since they decompose before the dispatch level where the recorder sits, and replaying one would
# hide its intermediates (an N x N product inside an einsum) from the counter.
_EXTRA = {
    "copy_", "tril", "triu", "zeros", "ones", "arange", "new_zeros", "new_ones", "new_empty", "new_full",
    "linalg_vector_norm", "_unsafe_view", "stack", "fill_", "zero_", "baddbmm", "addbmm", "index_put",
    "index_put_", "cumprod", "roll", "dot", "vdot", "mv", "addmv", "lift_fresh_copy", "eye", "empty_like",
    "all", "masked_select", "norm", "cummax", "cummin", "logcumsumexp", "tril_indices", "triu_indices",
    "var_mean", "std_mean", "logsumexp", "diag_embed", "t", "clamp_min", "clamp_max", "masked_fill_",
    "repeat_interleave", "unsafe_split", "split_with_sizes", "unsafe_chunk", "elu", "_cdist_forward",
    "_euclidean_dist", "aminmax", "scatter",
}
# Type arithmetic some code dispatches (torch.promote_types(a, b)): dtypes in, a dtype out. It
# does no work and touches no tensor, so the recorder runs it without recording it.
_METADATA = {aten.promote_types.default}
# Never replayed: file access, assertions and printing, storage or layout tricks.
_DENIED = ("sparse", "nested", "quantize", "from_file", "_assert", "print", "set_", "record_stream",
           "_foreach", "mkldnn", "cudnn", "miopen", "mps", "_fused", "to_padded", "_efficientzerotensor",
           "_make_dep_token", "_functional_", "resize")


def operation_allowed(op) -> bool:
    name = op._schema.name.removeprefix("aten::")
    if op.namespace != "aten" or any(word in name for word in _DENIED):
        return False
    qualified = op._schema.name + (f".{op._overloadname}" if op._overloadname != "default" else "")
    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CompositeImplicitAutograd"):
        return False
    base = name.rstrip("_")
    tags = set(op.tags)
    return (torch.Tag.core in tags or torch.Tag.pointwise in tags or op.is_view
            or name in _EXTRA or base in _EXTRA)


def _resolve(name) -> object | None:
    """'aten.mm.default' -> the OpOverload, if it is one a trace may hold."""
    if type(name) is not str:
        return None
    parts = name.split(".")
    if len(parts) != 3 or parts[0] != "aten":
        return None
    try:
        op = getattr(getattr(torch.ops.aten, parts[1]), parts[2])
    except (AttributeError, RuntimeError):
        return None
    return op if isinstance(op, torch._ops.OpOverload) and operation_allowed(op) else None


# ---- the trace format ----------------------------------------------------------------------
#
# A trace is text, one JSON value per line (so that a long loop of small operations stays cheap
# to record, send and read, one line at a time):
#   [op name, ...]                              the operations' names
#   [name index, args, kwargs, outputs]         one line per operation, in the order they ran
#   ref                                         the call's output
# Arguments are JSON values, where a string is a reference or a tagged literal:
#   "%i<name>" an input, "%t<n>" the n-th tensor an op produced, "%c<n>" the n-th constant (a tensor
#   no recorded op produced; sent beside the text), "%d<dtype>", "%l<layout>", "%m<memory format>",
#   "%v<device>", and "'<text>" a literal string. An op's outputs are a ref, a list of them, or null.

_TAGS = ((torch.dtype, "%d"), (torch.layout, "%l"), (torch.memory_format, "%m"), (torch.device, "%v"))


# ---- recording (in the child) ---------------------------------------------------------------

_COMPACT = json.JSONEncoder(separators=(",", ":"))     # built once: json.dumps builds one per call
_NUMBERS = (bool, int, float)


class OperationRecorder(_EagerMode):
    """Records each aten op the call dispatches, over references to tensors (see above)."""

    def __init__(self, inputs: dict):
        super().__init__()
        self.ops: list = []
        self.names: list[str] = []
        self._name_index: dict = {}
        self.constants: list = []
        # id -> (reference, weak reference): an entry leaves when its tensor dies, before the id
        # can be reused, and the recorder keeps no tensor alive (a loop's memory stays its own)
        self._refs: dict[int, tuple[str, weakref.ref]] = {}
        for name, value in inputs.items():
            if type(value) is torch.Tensor:
                self._remember(value, f"%i{name}")
        self._produced = 0

    def _remember(self, tensor: torch.Tensor, ref: str) -> str:
        key = id(tensor)
        self._refs[key] = (ref, weakref.ref(tensor, lambda _, key=key: self._refs.pop(key, None)))
        return ref

    def _known(self, tensor: torch.Tensor) -> str | None:
        entry = self._refs.get(id(tensor))
        return entry[0] if entry is not None and entry[1]() is tensor else None

    def _ref(self, value):
        if value is None or type(value) in (bool, int, float):
            return value
        if isinstance(value, torch.Tensor):
            known = self._known(value)
            if known is not None:
                return known
            self.constants.append(value.detach().clone())
            return self._remember(value, f"%c{len(self.constants) - 1}")
        if isinstance(value, (list, tuple)):
            return [self._ref(v) for v in value]
        if type(value) is str:
            return "'" + value
        if type(value) is dict:
            return {str(k): self._ref(v) for k, v in value.items()}
        for kind, tag in _TAGS:
            if isinstance(value, kind):
                return tag + str(value).removeprefix("torch.")
        raise TypeError(f"an operation argument of type {type(value).__name__} cannot be recorded")

    def _bind(self, value):
        if isinstance(value, torch.Tensor):
            known = self._known(value)
            if known is not None:                              # an in-place op returns its input
                return known
            self._produced += 1
            return self._remember(value, f"%t{self._produced - 1}")
        if isinstance(value, (list, tuple)):
            return [self._bind(v) for v in value]
        return None

    def _args(self, args: tuple) -> list:
        """`_ref` of each argument, with a loop's common arguments (known tensors, numbers)
        resolved inline: a Python loop dispatches a few operations per iteration."""
        refs = []
        for value in args:
            kind = type(value)
            if kind is torch.Tensor:
                entry = self._refs.get(id(value))
                refs.append(entry[0] if entry is not None and entry[1]() is value else self._ref(value))
            elif value is None or kind in _NUMBERS:
                refs.append(value)
            else:
                refs.append(self._ref(value))
        return refs

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _METADATA:          # no tensor in, none out: its result is a literal of later ops
            return func(*args, **(kwargs or {}))
        index = self._name_index.get(func)
        if index is None:
            index = self._name_index[func] = len(self.names)
            self.names.append(str(func))
        entry = [index, self._args(args), {k: self._ref(v) for k, v in kwargs.items()} if kwargs else {}]
        out = func(*args, **(kwargs or {}))
        entry.append(self._bind(out))
        # kept as text at once: a long loop's trace then costs one small string per op
        self.ops.append(_COMPACT.encode(entry))
        return out

    def trace(self, output) -> dict:
        """Plain data for the wire: the text (see above) and the constants beside it."""
        lines = [json.dumps(self.names), *self.ops, json.dumps(self._ref(output))]
        return {"trace": "\n".join(lines), "constants": self.constants}


# ---- replaying (trusted side, in a bounded helper) ------------------------------------------

class TraceError(ValueError):
    """The trace cannot be replayed; the message is fit for a student."""


_LITERALS = {
    "%d": {str(v).removeprefix("torch."): v for v in vars(torch).values() if isinstance(v, torch.dtype)},
    "%l": {"strided": torch.strided},
    "%m": {str(v).removeprefix("torch."): v for v in (
        torch.contiguous_format, torch.preserve_format, torch.channels_last, torch.channels_last_3d)},
    "%v": {"cpu": torch.device("cpu")},
}


class _Replay:
    def __init__(self, inputs: dict, constants: list):
        self.inputs = {f"%i{k}": v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        self.produced: dict[str, torch.Tensor] = {}
        self.constants = constants

    def value(self, node, depth: int = 0):
        kind = type(node)
        if kind is str:
            return self._string(node)
        if node is None or kind in _NUMBERS:
            return node
        if depth > 16:
            raise TraceError("an operation's arguments are nested too deeply")
        if kind is list:
            # a long loop replays many small ops: the common items are resolved inline
            return [v if type(v) in _NUMBERS else self._string(v) if type(v) is str else self.value(v, depth + 1)
                    for v in node]
        if kind is dict:
            return {k: self.value(v, depth + 1) for k, v in node.items()}
        raise TraceError("an operation argument the grader cannot replay")

    def _string(self, node: str):
        if node.startswith("'"):
            return node[1:]
        tag, body = node[:2], node[2:]
        found = (self.produced.get(node) if tag == "%t" else self.inputs.get(node) if tag == "%i"
                 else _LITERALS[tag].get(body) if tag in _LITERALS else None)
        if found is None and tag == "%c" and body.isdigit() and int(body) < len(self.constants):
            found = self.constants[int(body)]
        if found is None:
            raise TraceError(f"an operation argument the grader cannot replay: {node[:80]}")
        return found

    def bind(self, refs, value) -> None:
        if type(refs) is str and refs.startswith("%t"):
            if not isinstance(value, torch.Tensor):
                raise TraceError("the trace does not match what its operations return")
            self.produced[refs] = value
        elif type(refs) is list:
            if not isinstance(value, (list, tuple)) or len(value) != len(refs):
                raise TraceError("the trace does not match what its operations return")
            for r, v in zip(refs, value):
                self.bind(r, v)


def _lines(text: str):
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield text[start:end]
        start = end + 1


def _json(line: str):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        raise TraceError("the recorded trace is malformed") from None


def _parse(trace) -> tuple[list, int, list, object]:
    """(op names, number of ops, constants, output); the ops are read again, one line at a
    time, by `_operations`."""
    if type(trace) is not dict or type(trace.get("trace")) is not str or type(trace.get("constants")) is not list:
        raise TraceError("the recorded trace is malformed")
    if not all(type(c) is torch.Tensor for c in trace["constants"]):
        raise TraceError("the recorded trace is malformed")
    text = trace["trace"]
    first, last = text.find("\n"), text.rfind("\n")
    if first < 0:
        raise TraceError("the recorded trace is malformed")
    names = _json(text[:first])
    if type(names) is not list:
        raise TraceError("the recorded trace is malformed")
    return names, text.count("\n", first, last + 1) - 1 if last > first else 0, trace["constants"], _json(text[last + 1:])


def _operations(text: str):
    lines = _lines(text)
    next(lines)
    previous = None
    for line in lines:
        if previous is not None:
            yield _json(previous)
        previous = line


def _last_uses(text: str) -> dict[int, list[str]]:
    """op index -> the produced tensors last used there (the output's are kept to the end), so
    that the replay holds only the live tensors, as the student's own run did."""
    last: dict[str, int] = {}
    lines = _lines(text)
    next(lines)
    for index, line in enumerate(lines):
        for ref in _REFERENCE.findall(line):
            last[ref] = index
    dying: dict[int, list[str]] = {}
    for ref, index in last.items():
        dying.setdefault(index, []).append(ref)
    return dying


_REFERENCE = re.compile(r'"(%t\d+)"')


def replay(trace: dict, inputs: dict, max_operations: int = 500_000):
    """Run a recorded trace on our own copy of the inputs; returns (output, counter, constant
    elements). Raises TraceError for anything outside the format or the allowed operations."""
    names, count, constants, output = _parse(trace)
    if count > max_operations:
        raise TraceError(f"the call ran more than {max_operations} tensor operations")
    resolved = [_resolve(name) for name in names if type(name) is str] if all(type(n) is str for n in names) else None
    if resolved is None:
        raise TraceError("the recorded trace is malformed")
    dying = _last_uses(trace["trace"])
    state = _Replay(inputs, constants)
    counter = OperationCounter()
    constant_elements = sum(c.numel() for c in constants)
    counter.work += constant_elements
    counter.peak_bytes = max([c.untyped_storage().nbytes() for c in constants] + [0])
    for index, entry in enumerate(_operations(trace["trace"])):
        if type(entry) is not list or len(entry) != 4 or type(entry[0]) is not int or type(entry[2]) is not dict \
                or not 0 <= entry[0] < len(resolved):
            raise TraceError("the recorded trace is malformed")
        op = resolved[entry[0]]
        if op is None:
            raise TraceError(f"the call used an operation the grader does not replay: {str(names[entry[0]])[:80]}")
        args = state.value(entry[1])
        kwargs = state.value(entry[2])
        try:
            out = op._op(*args, **kwargs)     # the OpOverload's own kernel entry, without its wrapper
        except Exception as exc:
            raise TraceError(f"replaying {names[entry[0]]} failed: {type(exc).__name__}: {str(exc)[:200]}") from None
        if "empty" in names[entry[0]]:
            for t in _tensors([out]):
                t.zero_()    # uninitialised memory of the helper must not reach any message
        counter.count(op, args, out)
        state.bind(entry[3], out)
        del args, kwargs, out
        for ref in dying.get(index, ()):
            state.produced.pop(ref, None)
    return state.value(output), counter, constant_elements

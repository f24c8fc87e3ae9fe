"""Nothing the child returns is trusted; measurements taken inside the child are not trusted.

Each submission is the reference with a few hostile changes, each aimed at a different
function (or a different case of one function), and is graded once through the CLI in a
subprocess; the tests of a submission share its one grading run (a module-scoped fixture) and
each checks one attack: the targeted case fails with a message naming the problem, and every
case that was not targeted is still graded and passes.
"""
from __future__ import annotations

import re
import shutil
import textwrap

import pytest

from gradingkit import (
    assert_only_these_fail,
    assignment_copy,
    check_honest,
    make_submission,
    reference_source,
    replace_function,
    run_grader,
    run_grader_measured,
    world_writable_dir,
)

REF = reference_source()

SOFTMAX = "softmax_attention"
SOFTMAX_CAUSAL = "softmax_attention, causal"
SOFTMAX_CAUSAL_HEADS = "softmax_attention, causal, batch x heads"
POLY = "polynomial_feature_map: kernel (1 + q.k)^2"
POLY_HEADS = "polynomial_feature_map, batch x heads"
RANDOM = "random_feature_map"
SOFTMAX_KERNEL = "softmax_kernel_feature_map"
KERNEL_LINEAR = "kernel_attention is linear in N"
CAUSAL_LINEAR = "causal_kernel_attention is linear in N"
NOT_INTERNAL = r"^(?![\s\S]*internal grader error)"


# ---- positive controls: correct linear attention written as a Python loop over N -----------

LOOP_KERNEL = """
    phi_Q, phi_K = feature_map(Q), feature_map(K)
    N = Q.shape[-2]
    S = phi_K[..., 0, :, None] * V[..., 0, None, :]          # [..., F, M]
    Z = phi_K[..., 0, :]                                     # [..., F]
    for j in range(1, N):
        S = S + phi_K[..., j, :, None] * V[..., j, None, :]
        Z = Z + phi_K[..., j, :]
    rows = []
    for i in range(N):
        rows.append((phi_Q[..., i, :, None] * S).sum(-2) / (phi_Q[..., i, :] * Z).sum(-1, keepdim=True))
    return torch.stack(rows, dim=-2)
"""

LOOP_CAUSAL = """
    phi_Q, phi_K = feature_map(Q), feature_map(K)
    S = Z = None
    rows = []
    for i in range(Q.shape[-2]):
        kv = phi_K[..., i, :, None] * V[..., i, None, :]
        S = kv if S is None else S + kv
        Z = phi_K[..., i, :] if Z is None else Z + phi_K[..., i, :]
        rows.append((phi_Q[..., i, :, None] * S).sum(-2) / (phi_Q[..., i, :] * Z).sum(-1, keepdim=True))
    return torch.stack(rows, dim=-2)
"""


# ---- A1: values outside what the boundary accepts ------------------------------------------

OUTSIDE_THE_FORMAT = textwrap.dedent('''

    # ---- hostile: tensors the parent must never build or work on ----
    _softmax_attention = softmax_attention
    _polynomial_feature_map = polynomial_feature_map


    def softmax_attention(Q, K, V, causal=False):
        if not causal:          # sparse COO whose indices point far outside its size
            idx = torch.tensor([[0, 10**9]] * 3)
            return torch.sparse_coo_tensor(idx, torch.ones(2, dtype=Q.dtype), (Q.shape[0], Q.shape[1], V.shape[-1]),
                                           check_invariants=False)
        if Q.dim() == 3:        # quantized
            return torch.quantize_per_tensor(_softmax_attention(Q, K, V, causal).float(), 0.1, 0, torch.qint8)
        return torch.nested.nested_tensor(list(_softmax_attention(Q, K, V, causal).flatten(0, 1)))


    def polynomial_feature_map(X):
        if X.dim() == 3:        # [B, N, 10**6] features: zero stride, free here, 384 MB once copied
            return _polynomial_feature_map(X)[..., :1].expand(*X.shape[:-1], 10**6)
        return torch.empty(*X.shape[:-1], 1 + X.shape[-1] + X.shape[-1] ** 2, dtype=X.dtype, device="meta")


    def random_feature_map(X, W):   # 100,000 real features per row: within the wire's byte budget
        return torch.ones(*X.shape[:-1], 10**5, dtype=torch.float32)


    def softmax_kernel_feature_map(X, W, sigma2):   # 10**10 float64 elements over a single one
        return torch.zeros(1, dtype=torch.float64).expand(10**10)
''')


@pytest.fixture(scope="module")
def outside_the_format(tmp_path_factory):
    base = tmp_path_factory.mktemp("outside_format")
    source = replace_function(replace_function(REF, "kernel_attention", LOOP_KERNEL),
                              "causal_kernel_attention", LOOP_CAUSAL)
    folder = make_submission(base / "submission", source + OUTSIDE_THE_FORMAT)
    return run_grader(folder, base / "results.json")


OUTSIDE_THE_FORMAT_VERDICTS = {
    SOFTMAX: (r"layout torch\.sparse_coo", "dense"),
    SOFTMAX_CAUSAL: (r"quantized tensor",),
    SOFTMAX_CAUSAL_HEADS: (r"nested tensor",),
    POLY: (r"48000000 elements \(shape \[2, 24, 1000000\]\), more than the grader accepts",),
    POLY_HEADS: (r"meta tensor",),
    RANDOM: (r"100000 features per row, more than the \d+ the grader accepts",),
    SOFTMAX_KERNEL: (r"10000000000 elements \(shape \[10000000000\]\), more than the grader accepts",),
}


@pytest.mark.parametrize("case", list(OUTSIDE_THE_FORMAT_VERDICTS))
def test_value_outside_the_format_is_refused(outside_the_format, schema, case):
    graded = outside_the_format
    check_honest(graded, schema)
    test = graded.by_name[case]
    assert test["status"] == "failed" and test["score"] == 0, graded.describe()
    for needle in OUTSIDE_THE_FORMAT_VERDICTS[case] + (NOT_INTERNAL,):
        assert re.search(needle, test["output"]), f"{needle!r} not in the output of {case!r}:\n{test['output']}"


def test_value_outside_the_format_costs_only_its_case(outside_the_format, schema):
    check_honest(outside_the_format, schema)
    assert_only_these_fail(outside_the_format, {name: () for name in OUTSIDE_THE_FORMAT_VERDICTS})


def test_refused_value_is_not_called_an_exception(outside_the_format, schema):
    """The code returned normally and the grader refused what it returned: telling the student
    that their code raised sends them looking for an exception that never happened."""
    check_honest(outside_the_format, schema)
    refused_in_the_worker = [name for name in OUTSIDE_THE_FORMAT_VERDICTS if name != RANDOM]
    said = {name: outside_the_format.by_name[name]["output"].splitlines()[1] for name in refused_in_the_worker}
    assert not [name for name, line in said.items() if "raised an exception" in line], said


def test_loop_over_n_is_linear(outside_the_format, schema):
    """Positive control: attention written as a Python loop over N (a legitimate solution) is
    linear, and earns the complexity points."""
    check_honest(outside_the_format, schema)
    for name in (KERNEL_LINEAR, CAUSAL_LINEAR):
        test = outside_the_format.by_name[name]
        assert test["status"] == "passed" and test["score"] == test["max_score"], outside_the_format.describe()
        assert re.search(r"work grows like N\^(0\.9|1\.[0-2])", test["output"]), test["output"]


# ---- A2: raw frames on the worker's command socket ----------------------------------------

RAW_FRAMES = textwrap.dedent('''

    # ---- hostile: frames written straight onto the worker's command socket ----
    import io as _io
    import json as _json
    import os as _os
    import struct as _struct
    import time as _time

    _softmax_attention = softmax_attention
    _polynomial_feature_map = polynomial_feature_map
    _random_feature_map = random_feature_map


    def _socket_fd():
        for name in sorted(_os.listdir("/proc/self/fd"), key=int):
            try:
                if _os.readlink("/proc/self/fd/" + name).startswith("socket:["):
                    return int(name)
            except OSError:
                pass
        raise RuntimeError("no socket among the open files")


    def _send(payload, length=None, then="hang"):
        data = _struct.pack(">Q", len(payload) if length is None else length) + payload
        fd = _socket_fd()
        while data:
            data = data[_os.write(fd, data):]
        if then == "hang":
            _time.sleep(60)


    def _frame(header, tensor_bytes=b""):
        text = header if isinstance(header, bytes) else _json.dumps(header).encode()
        text += b" " * (-(4 + len(text)) % 16)
        return _struct.pack(">I", len(text)) + text + tensor_bytes


    def softmax_attention(Q, K, V, causal=False):
        if not causal:          # (a) the old attack: torch.save of a sparse tensor with bad indices
            bad = torch.sparse_coo_tensor(torch.tensor([[0, 10**9]]), torch.ones(2), (3,), check_invariants=False)
            buffer = _io.BytesIO()
            torch.save({"ok": True, "value": bad}, buffer)
            _send(buffer.getvalue(), then="hang")
        elif Q.dim() == 3:      # (b) a well-formed header claiming 8 TiB of float64, with 16 bytes
            _send(_frame({"v": {"D": [["ok", True], ["value", {"X": 0}]]}, "t": [["float64", [2**30, 2**10]]]},
                         b"\\0" * 16), then="return")
        return _softmax_attention(Q, K, V, causal)


    def polynomial_feature_map(X):
        if X.dim() == 3:        # (c) a header of JSON nested 1,000,000 levels deep
            _send(_frame(b"[" * 1_000_000 + b"]" * 1_000_000), then="return")
        else:                   # (d) a length prefix of 2**62
            _send(b"\\0" * 64, length=2**62, then="hang")
        return _polynomial_feature_map(X)


    def _current_request_id():
        """The number of the request being answered, read from the worker's own frames: with
        it, a forged reply is taken as this call's answer (the protocol cannot tell)."""
        import sys as _sys
        frame = _sys._getframe()
        while frame is not None:
            request = frame.f_locals.get("request")
            if isinstance(request, dict) and isinstance(request.get("id"), int):
                return request["id"]
            frame = frame.f_back
        return 0


    _forged = []


    def random_feature_map(X, W):   # (e) a well-formed reply holding a bool tensor of 0x07 bytes
        features = _random_feature_map(X, W)
        if not _forged:             # once: the call then returns, and its real reply comes late
            _forged.append(True)
            header = {"v": {"D": [["ok", True], ["value", {"X": 0}], ["id", _current_request_id()]]},
                      "t": [["bool", list(features.shape)]]}
            _send(_frame(header, b"\\x07" * features.numel()), then="return")
        return features
''')

# the timeout of the case after the forged reply: short, so that a stolen reply costs seconds
RAW_FRAME_LIMITS = {"case_timeout_floor_s": 5}
PARENT_MEMORY_LIMIT = 1536 * 2**20


@pytest.fixture(scope="module")
def raw_frames(tmp_path_factory):
    base = tmp_path_factory.mktemp("raw_frames")
    root = assignment_copy(base, RAW_FRAME_LIMITS)
    folder = make_submission(base / "submission", REF + RAW_FRAMES)
    return run_grader_measured(folder, base / "results.json", env={"DLGRADE_ROOT": str(root)})


RAW_FRAME_VERDICTS = {
    SOFTMAX: "a frame header of an impossible length",                          # (a) torch.save bytes
    SOFTMAX_CAUSAL: r"more than \d+ tensor elements",                             # (b)
    POLY: r"an unreadable frame header \(RecursionError\)",                       # (c)
    POLY_HEADS: r"a result of 4611686018427387904 bytes, more than the grader accepts",   # (d)
}


@pytest.mark.parametrize("case", list(RAW_FRAME_VERDICTS))
def test_raw_frame_is_refused(raw_frames, schema, case):
    graded, _ = raw_frames
    check_honest(graded, schema)
    test = graded.by_name[case]
    assert test["status"] == "failed" and test["score"] == 0, graded.describe()
    assert re.search(r"refused your code's result: [^\n]*" + RAW_FRAME_VERDICTS[case], test["output"]), test["output"]


def test_raw_frame_bool_bytes_are_normalized(raw_frames, schema):
    """(e) is within the format: its bytes become True/False before any kernel sees them."""
    graded, _ = raw_frames
    check_honest(graded, schema)
    test = graded.by_name[RANDOM]
    assert test["status"] == "failed", graded.describe()
    assert re.search(r"dtype torch\.bool, expected torch\.float64", test["output"]), test["output"]


def test_raw_frames_parent_stays_small(raw_frames, schema):
    graded, peak = raw_frames
    check_honest(graded, schema)
    assert peak < PARENT_MEMORY_LIMIT, f"the grader (or a process it started) peaked at {peak / 2**20:.0f} MiB"


def test_raw_frames_later_cases_get_a_fresh_worker(raw_frames, schema):
    graded, _ = raw_frames
    check_honest(graded, schema)
    # every case outside the attacks (but the one right after the forged reply: see below)
    assert_only_these_fail(graded, {**{name: ("refused",) for name in RAW_FRAME_VERDICTS}, RANDOM: ()})


def test_forged_reply_does_not_answer_the_next_case(raw_frames, schema):
    """(e) forged its call's reply with the right request number, so it was taken as that call's
    answer (its own value: bool, the wrong dtype). The call's real reply, arriving late, must be
    skipped, not taken as the answer of the next case, which then passes."""
    graded, _ = raw_frames
    check_honest(graded, schema)
    assert "torch.bool" in graded.by_name[RANDOM]["output"], graded.describe()
    test = graded.by_name[SOFTMAX_KERNEL]
    assert test["status"] == "passed", graded.describe()


# ---- C: complexity measured by the parent, whatever the child does ---------------------------

QUADRATIC_KERNEL = """
    phi_Q, phi_K = feature_map(Q), feature_map(K)
    A = phi_Q @ phi_K.transpose(-2, -1)                        # [..., N, N]
    return (A @ V) / A.sum(dim=-1, keepdim=True)
"""

QUADRATIC_CAUSAL = """
    phi_Q, phi_K = feature_map(Q), feature_map(K)
    A = torch.tril(phi_Q @ phi_K.transpose(-2, -1))            # [..., N, N]
    return (A @ V) / A.sum(dim=-1, keepdim=True)
"""

MARK = textwrap.dedent('''

    import os as _os


    def _mark(what):
        """Evidence that the tampering ran in the worker."""
        try:
            with open(_os.path.join({markers!r}, what), "a") as f:
                f.write("x")
        except OSError:
            pass
''')

# (1) the child's copy of the counter, patched at import; the kernel attention is plainly quadratic
COUNTER_PATCH = textwrap.dedent('''

    import sys as _sys

    _complexity = _sys.modules.get("grader.complexity")
    if _complexity is not None:
        _complexity.OperationCounter.count = lambda self, func, args, out: None
        _complexity.OperationCounter.__torch_dispatch__ = (
            lambda self, func, types, args=(), kwargs=None: func(*args, **(kwargs or {})))
        _complexity.growth_exponent = lambda sizes, counts: 0.0
        _mark("counter_patched")
''')

# (2) the causal attention's N x N work done with the dispatch modes switched off
MODES_OFF = """
    from torch.utils._python_dispatch import _disable_current_modes, _get_current_dispatch_mode

    if _get_current_dispatch_mode() is not None:
        _mark("modes_disabled")
    with _disable_current_modes():
        phi_Q, phi_K = feature_map(Q), feature_map(K)
        A = torch.tril(phi_Q @ phi_K.transpose(-2, -1))
        return (A @ V) / A.sum(dim=-1, keepdim=True)
"""

DISPATCH_OFF = """
    from torch.utils._python_dispatch import _get_current_dispatch_mode

    if _get_current_dispatch_mode() is not None:
        _mark("dispatch_disabled")
    with torch._C._DisableTorchDispatch():
        phi_Q, phi_K = feature_map(Q), feature_map(K)
        A = torch.tril(phi_Q @ phi_K.transpose(-2, -1))
        out = (A @ V) / A.sum(dim=-1, keepdim=True)
    return out
"""

# (3) the record measure replaced by one that returns a forged trace
FORGED_MEASURE = textwrap.dedent('''

    import json as _json
    import sys as _sys


    def _text(names, ops, output):
        """A trace in the recorder's format: names, one line per operation, the output."""
        return "\\n".join([_json.dumps(names)] + [_json.dumps(op) for op in ops] + [_json.dumps(output)])

    _measures = _sys.modules.get("grader.sandbox.measures")
    _invoke = _sys.modules.get("grader.sandbox.invoke")


    def _forged_record(modules, spec, inputs, options):
        out = _invoke.call(modules, spec, inputs)        # the right answer, computed unobserved
        _mark("forged_measure_" + spec["target"])
        if spec["target"] == "kernel_attention":         # a constant that is the right answer
            return {"trace": _text([], [], "%c0"),
                    "constants": [out.detach().clone()]}
        # no operation at all
        return {"trace": _text([], [], "%iV"), "constants": []}


    if _measures is not None and _invoke is not None:
        # the worker's registry of measures: the attack swaps the one complexity cases ask for
        _measures.MEASURES["record"] = _measures.Measure("record", _forged_record, True)
''')

FORGED_TRACE = textwrap.dedent('''

    import json as _json
    import sys as _sys


    def _text(names, ops, output):
        """A trace in the recorder's format: names, one line per operation, the output."""
        return "\\n".join([_json.dumps(names)] + [_json.dumps(op) for op in ops] + [_json.dumps(output)])

    _complexity = _sys.modules.get("grader.complexity")
    _calling = [None]


    def _forged_trace(self, output):
        _mark("forged_trace_" + str(_calling[0]))
        if _calling[0] == "kernel":       # an operation that reads a file
            names, ops = ["aten.from_file.default"], [[0, ["\'/etc/shadow", False, 4096], {}, "%t0"]]
        else:                             # an operation outside aten
            names, ops = ["prims.mul.default"], [[0, ["%iQ", "%iK"], {}, "%t0"]]
        return {"trace": _text(names, ops, "%t0"), "constants": []}


    if _complexity is not None:
        _complexity.OperationRecorder.trace = _forged_trace
''')

TRACE_KERNEL = "\n    _calling[0] = 'kernel'" + QUADRATIC_KERNEL
TRACE_CAUSAL = "\n    _calling[0] = 'causal'" + QUADRATIC_CAUSAL

# (4) numpy, converted with torch.from_numpy (autograd needs torch, so gradients take a torch path)
NUMPY_KERNEL = """
    import numpy as np

    if Q.requires_grad or K.requires_grad or V.requires_grad:
        phi_Q, phi_K = feature_map(Q), feature_map(K)
        A = phi_Q @ phi_K.transpose(-2, -1)
        return (A @ V) / A.sum(dim=-1, keepdim=True)
    q, k, v = feature_map(Q).numpy(), feature_map(K).numpy(), V.numpy()
    A = q @ np.swapaxes(k, -1, -2)
    return torch.from_numpy((A @ v) / A.sum(axis=-1, keepdims=True))
"""

NUMPY_CAUSAL = """
    import numpy as np

    if Q.requires_grad or K.requires_grad or V.requires_grad:
        phi_Q, phi_K = feature_map(Q), feature_map(K)
        A = torch.tril(phi_Q @ phi_K.transpose(-2, -1))
        return (A @ V) / A.sum(dim=-1, keepdim=True)
    q, k, v = feature_map(Q).numpy(), feature_map(K).numpy(), V.numpy()
    A = np.tril(q @ np.swapaxes(k, -1, -2))
    return torch.from_numpy((A @ v) / A.sum(axis=-1, keepdims=True))
"""

# (3) again: a forged trace of allowed aten operations that computes the right answer, where
# one operation (a 3-operand einsum, evaluated left to right) builds the N x N matrix inside it
FORGED_EINSUM = textwrap.dedent('''

    import json as _json
    import sys as _sys


    def _text(names, ops, output):
        """A trace in the recorder's format: names, one line per operation, the output."""
        return "\\n".join([_json.dumps(names)] + [_json.dumps(op) for op in ops] + [_json.dumps(output)])

    _measures = _sys.modules.get("grader.sandbox.measures")
    _invoke = _sys.modules.get("grader.sandbox.invoke")
    _honest_record = _measures.MEASURES["record"].run if _measures is not None else None
    _EINSUM_TRACE = _text(
        ["aten.elu.default", "aten.add.Tensor", "aten.einsum.default", "aten.unsqueeze.default", "aten.div.Tensor"],
        [[0, ["%iQ"], {}, "%t0"], [1, ["%t0", 1], {}, "%t1"],          # phi(Q) = elu(Q) + 1
         [0, ["%iK"], {}, "%t2"], [1, ["%t2", 1], {}, "%t3"],          # phi(K)
         [2, ["\'bnf,bmf,bme->bne", ["%t1", "%t3", "%iV"]], {}, "%t4"],   # (phi_Q phi_K^T) V
         [2, ["\'bnf,bmf->bn", ["%t1", "%t3"]], {}, "%t5"],           # row sums of phi_Q phi_K^T
         [3, ["%t5", -1], {}, "%t6"], [4, ["%t4", "%t6"], {}, "%t7"]],
        "%t7")


    def _einsum_record(modules, spec, inputs, options):
        if spec["target"] != "kernel_attention":
            return _honest_record(modules, spec, inputs, options)
        _invoke.call(modules, spec, inputs)          # the real, quadratic call, unobserved
        _mark("forged_einsum")
        return {"trace": _EINSUM_TRACE, "constants": []}


    if _measures is not None and _invoke is not None:
        _measures.MEASURES["record"] = _measures.Measure("record", _einsum_record, True)
''')

CONSTANTS = r"elements that no torch operation in the call produced"
COMPLEXITY_ATTACKS = {
    "counter_and_modes": (
        (QUADRATIC_KERNEL, MODES_OFF), COUNTER_PATCH, ("counter_patched", "modes_disabled"),
        {KERNEL_LINEAR: (r"not linear in N: an N x N intermediate", r"work grows like N\^(1\.[5-9]|2)"),
         CAUSAL_LINEAR: (CONSTANTS,)}),
    "forged_measure": (
        (QUADRATIC_KERNEL, QUADRATIC_CAUSAL), FORGED_MEASURE,
        ("forged_measure_kernel_attention", "forged_measure_causal_kernel_attention"),
        {KERNEL_LINEAR: (CONSTANTS,), CAUSAL_LINEAR: (r"compute a wrong result",)}),
    "forged_trace": (
        (TRACE_KERNEL, TRACE_CAUSAL), FORGED_TRACE, ("forged_trace_kernel", "forged_trace_causal"),
        {KERNEL_LINEAR: (r"does not replay: aten\.from_file",), CAUSAL_LINEAR: (r"does not replay: prims\.mul",)}),
    "numpy_and_dispatch": (
        (NUMPY_KERNEL, DISPATCH_OFF), "", ("dispatch_disabled",),
        {KERNEL_LINEAR: (CONSTANTS,), CAUSAL_LINEAR: (CONSTANTS,)}),
    "forged_einsum_and_numpy": (
        (QUADRATIC_KERNEL, NUMPY_CAUSAL), FORGED_EINSUM, ("forged_einsum",),
        {KERNEL_LINEAR: (r"does not replay: aten\.einsum",), CAUSAL_LINEAR: (CONSTANTS,)}),
}


@pytest.mark.parametrize("attack", list(COMPLEXITY_ATTACKS))
def test_complexity_is_measured_by_the_parent(tmp_path, schema, attack):
    (kernel, causal), tamper, evidence, verdicts = COMPLEXITY_ATTACKS[attack]
    markers = world_writable_dir("dlgrade-complexity-markers-")
    try:
        source = replace_function(replace_function(REF, "kernel_attention", kernel), "causal_kernel_attention", causal)
        source += MARK.format(markers=str(markers)) + tamper
        graded = run_grader(make_submission(tmp_path / "submission", source), tmp_path / "results.json")
        check_honest(graded, schema)
        missing = [e for e in evidence if not (markers / e).exists()]
        assert not missing, f"the tampering did not run in the worker: {missing}"
        # the values are right (the cases that call the same functions pass) ...
        assert_only_these_fail(graded, verdicts)
        # ... so only the complexity cases can catch it, and they do
    finally:
        shutil.rmtree(markers, ignore_errors=True)

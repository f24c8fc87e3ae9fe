"""`dlgrade record`: write golden files for the public cases from the reference.

Golden files let a student bundle (without reference/ or hidden cases) grade the public
cases: expected values, plus each mutant's value so likely-mistake hints still work.
They are data (`torch.save` of plain tensors, loaded with weights_only=True).

The bytes are a function of the content alone, so that `record` can leave an up-to-date file
untouched and `record --check` can compare bytes. torch.save itself is reproducible (fixed zip
timestamps, storage keys numbered in pickling order, a serialization id hashed from the
records), but two things of the object graph leak into its bytes beyond the values:
  - pickle memoizes by object identity: two equal strings that are distinct objects are
    written twice, one shared object once plus a back-reference;
  - a tensor is saved as its storage: a view saves the whole storage, and a transposed
    tensor saves its bytes in another order (with other strides) than an equal contiguous one.
`canonical` removes both before saving: every string interned, every tensor a contiguous copy
with a storage of its own, every container rebuilt. Dict order is kept: it is the order of the
cases and of the mutants, which decides which hint a student sees first.
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from grader.assignment import Assignment, AssignmentError
from grader.cases import Value, build_inputs, case_seed
from grader.oracle import Oracle
from grader.sandbox import wire


@dataclass
class RecordResult:
    """What `record` found (and did). `stale`: the file on disk was not byte-equal to the golden
    data computed from the reference (or was missing). `changed_cases`: the cases whose values
    differ, were added or were removed; empty while `stale` means the values are all equal and
    only the byte layout differs (a file written before golden bytes were canonical)."""
    path: Path
    stale: bool
    changed_cases: list[str] = field(default_factory=list)
    written: bool = False
    cases: list[str] = field(default_factory=list)      # the public cases the golden data holds

    @property
    def exit_code(self) -> int:
        """`dlgrade record [--check]`: 1 only when a stale file was left as it is (a check)."""
        return 1 if self.stale and not self.written else 0

    def message(self) -> str:
        if not self.stale:
            return f"{self.path} is up to date ({len(self.cases)} public cases); not rewritten"
        changed = (f"cases that changed: {', '.join(self.changed_cases)}" if self.changed_cases
                   else "no value changed, only the byte layout")
        if self.written:
            return f"wrote {self.path} ({len(self.cases)} public cases; {changed})"
        return f"{self.path} is stale ({changed}); run `dlgrade record` to rewrite it"


def public_seed(assignment: Assignment, case: Value) -> int:
    """The one seed of golden values. They are what a student bundle compares against, so they are
    computed as a student-mode run computes: on the case's public seed (its inputs, and the global
    generators its call draws from), never on a staff-only one."""
    return case_seed(assignment.name, case.name)


def public_inputs(assignment: Assignment, case: Value) -> dict:
    return build_inputs(case.inputs, public_seed(assignment, case))


def golden_cases(assignment: Assignment) -> list[Value]:
    return [c for c in assignment.cases if isinstance(c, Value) and c.public and not c.staff_only]


def _case_golden(oracle: Oracle, case: Value) -> dict:
    """The reference's value, and the value of every mutant that gives a different one."""
    assignment = oracle.assignment
    inputs, seed = public_inputs(assignment, case), public_seed(assignment, case)
    spec = case.call.spec(assignment.default_module)
    expected = oracle.reference(spec, inputs, seed).value
    mutants = {}
    for mutant in assignment.mutants:
        computed = oracle.mistake(mutant, spec, inputs, seed)
        if not computed.raised and not case.compare(expected, computed.value, equal_nan=True).ok:
            mutants[mutant.name] = computed.value
    return {"expected": expected, "mutants": mutants}


def golden_values(assignment: Assignment) -> dict:
    """case name -> {"expected": value, "mutants": {name: value}}, computed from the reference.
    Kept in the assignment's cache: it depends only on the cases, the reference and the mutants."""
    if "golden values" not in assignment.cache:
        if not assignment.reference_available():
            raise AssignmentError(f"{assignment.name}: recording golden values needs the reference (staff checkout)")
        oracle = Oracle.of(assignment)
        assignment.cache["golden values"] = {case.name: _case_golden(oracle, case) for case in golden_cases(assignment)}
    return assignment.cache["golden values"]


def canonical(value):
    """An equal copy of `value` whose torch.save bytes depend on its content only (see the module
    docstring): strings interned, tensors contiguous with storages of their own, containers new."""
    kind = type(value)
    if kind is torch.Tensor:
        return value.detach().clone(memory_format=torch.contiguous_format)
    if kind is str:
        return sys.intern(value)
    if kind in (int, float, bool, type(None)):
        return value                      # pickle never memoizes these
    if kind is dict:
        return {canonical(k): canonical(v) for k, v in value.items()}
    if kind in (list, tuple):
        return kind(canonical(v) for v in value)
    raise TypeError(f"golden values hold plain data only, not {kind.__name__}")


def golden_bytes(values: dict) -> bytes:
    return wire.encode(canonical(values))


def _decode_or_none(data: bytes):
    try:
        decoded = wire.decode(data, trusted=True)
    except Exception:   # an unreadable file is stale in every case
        return None
    return decoded if isinstance(decoded, dict) else None


def changed_cases(old: bytes | None, values: dict) -> list[str]:
    """Cases whose recorded entry differs from `values` (bit for bit, after `canonical`), in the
    order of `values`, then the cases the old file has that `values` no longer has."""
    recorded = _decode_or_none(old) if old is not None else None
    if recorded is None:
        return list(values)
    changed = [name for name in values
               if name not in recorded or golden_bytes(recorded[name]) != golden_bytes(values[name])]
    return changed + [name for name in recorded if name not in values]


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (a grading run, a test) never sees half a golden file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record(assignment: Assignment, check: bool = False) -> RecordResult:
    """Compute the golden data of `assignment` from the reference and compare it with the file.

    check=False: write the file when its bytes differ (only then: an up-to-date file keeps its
    mtime). check=True: write nothing; `stale` says whether `dlgrade record` would write."""
    values = golden_values(assignment)
    data = golden_bytes(values)
    path = assignment.golden_path
    old = path.read_bytes() if path.is_file() else None
    stale = old != data
    result = RecordResult(path, stale, changed_cases(old, values) if stale else [], cases=list(values))
    if stale and not check:
        _write_atomically(path, data)
        result.written = True
    return result

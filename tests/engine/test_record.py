"""`dlgrade record`: golden bytes depend on the content only, `check` finds stale files and the
cases that changed, and an up-to-date file is never rewritten.

The committed golden files are only read here: every write goes to a copy of the assignment
folder (an Assignment whose `path`, hence `golden_path`, points at the copy)."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grader import assignment as assignments
from grader.record import canonical, golden_bytes, record
from grader.sandbox import wire

ROOT = Path(__file__).resolve().parents[2]
OLD_MTIME_NS = 1_000_000_000 * 10**9          # 2001: any rewrite would move it


@pytest.fixture(scope="module", params=assignments.available())
def staff(request):
    """One load per assignment: its golden values are computed once (kept in its cache)."""
    return assignments.load(request.param)


def _copy(assignment, tmp_path: Path):
    folder = tmp_path / assignment.name
    shutil.copytree(assignment.path, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dataclasses.replace(assignment, path=folder)


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return next((t for t in map(_first_tensor, items) if t is not None), None)


def test_committed_golden_file_is_up_to_date(staff):
    before = staff.golden_path.stat()
    result = record(staff, check=True)
    changed = ", ".join(result.changed_cases) or "none, byte layout only"
    assert not result.stale, f"{staff.name}: the golden file is stale (changed: {changed}); run `dlgrade record {staff.name}`"
    assert result.changed_cases == [] and not result.written and result.path == staff.golden_path
    assert result.cases and len(result.cases) == len(set(result.cases))
    after = staff.golden_path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)


def test_recording_twice_writes_identical_bytes_once(staff, tmp_path):
    copy = _copy(staff, tmp_path)
    copy.golden_path.unlink()
    first = record(copy)
    assert first.written and first.stale and first.changed_cases == first.cases
    assert copy.golden_path.read_bytes() == staff.golden_path.read_bytes()
    os.utime(copy.golden_path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    second = record(copy)
    assert not second.written and not second.stale and second.changed_cases == []
    assert copy.golden_path.stat().st_mtime_ns == OLD_MTIME_NS
    assert copy.golden_path.read_bytes() == staff.golden_path.read_bytes()


def test_an_altered_value_is_reported_stale_by_case_name(staff, tmp_path):
    copy = _copy(staff, tmp_path)
    golden = wire.decode(copy.golden_path.read_bytes(), trusted=True)
    name = next(iter(golden))
    tensor = _first_tensor(golden[name]["expected"])
    tensor.view(-1)[0] += 1.0
    altered = wire.encode(golden)
    copy.golden_path.write_bytes(altered)
    result = record(copy, check=True)
    assert result.stale and result.changed_cases == [name] and not result.written
    assert copy.golden_path.read_bytes() == altered          # check writes nothing


def test_a_missing_or_extra_case_is_reported(staff, tmp_path):
    copy = _copy(staff, tmp_path)
    golden = wire.decode(copy.golden_path.read_bytes(), trusted=True)
    dropped = list(golden)[-1]
    del golden[dropped]
    golden["no such case"] = {"expected": torch.zeros(1), "mutants": {}}
    copy.golden_path.write_bytes(wire.encode(golden))
    assert record(copy, check=True).changed_cases == [dropped, "no such case"]


def test_committed_golden_files_are_canonical(staff):
    """Decoding and re-encoding gives the same bytes: the file is a fixed point of `canonical`."""
    data = staff.golden_path.read_bytes()
    assert golden_bytes(wire.decode(data, trusted=True)) == data


# ---- canonical bytes, without the reference ---------------------------------------------------

def _values(shared: bool) -> dict:
    """The same content built two ways: with shared objects, views and a transposed tensor, or
    with every object distinct and contiguous."""
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    name = "".join(["mutant", "_a"])                 # not interned: equal strings, distinct objects
    if shared:
        expected = {"out": base[1:], "grads": {"K": base.t()}}
        mutants = {name: {"out": base[1:] * 2, "grads": {"K": base.t()}}}
        other = {"expected": expected["out"], "mutants": {name: mutants[name]["out"]}}
    else:
        expected = {"out": base[1:].clone(), "grads": {"K": base.t().clone(memory_format=torch.contiguous_format)}}
        mutants = {"mutant_a": {"out": base[1:] * 2, "grads": {"K": base.t().clone(memory_format=torch.contiguous_format)}}}
        other = {"expected": base[1:].clone(), "mutants": {"".join(["mutant", "_a"]): base[1:].clone() * 2}}
    return {"case one": {"expected": expected, "mutants": mutants}, "case two": other}


def test_equal_content_gives_equal_bytes_whatever_the_object_graph():
    assert golden_bytes(_values(shared=True)) == golden_bytes(_values(shared=False))
    assert wire.encode(_values(shared=True)) != wire.encode(_values(shared=False))   # what canonical fixes


def test_different_content_gives_different_bytes():
    changed = _values(shared=False)
    changed["case two"]["expected"][0, 0] = -1.0
    assert golden_bytes(changed) != golden_bytes(_values(shared=False))
    reordered = dict(reversed(list(_values(shared=False).items())))
    assert golden_bytes(reordered) != golden_bytes(_values(shared=False))     # case order is content


def test_canonical_keeps_values_and_refuses_other_types():
    transposed = _values(shared=True)["case one"]["expected"]["grads"]["K"]
    copy = canonical({"K": transposed})["K"]
    assert torch.equal(copy, transposed) and copy.is_contiguous() and copy.untyped_storage().nbytes() == 12 * 8
    with pytest.raises(TypeError):
        canonical({"x": object()})


def test_golden_bytes_are_the_same_in_another_process():
    script = ("import sys, hashlib; sys.path.insert(0, sys.argv[1]); from test_record import _values; "
              "from grader.record import golden_bytes; print(hashlib.sha256(golden_bytes(_values(True))).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        run = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], cwd=ROOT, capture_output=True,
                             text=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert digests == {hashlib.sha256(golden_bytes(_values(shared=False))).hexdigest()}


def test_result_says_what_the_command_prints_and_exits_with(tmp_path):
    from grader.record import RecordResult

    path = tmp_path / "public.pt"
    fresh = RecordResult(path, stale=False, cases=["a", "b"])
    assert fresh.exit_code == 0 and "is up to date (2 public cases)" in fresh.message()
    stale = RecordResult(path, stale=True, changed_cases=["b"], cases=["a", "b"])
    assert stale.exit_code == 1 and "is stale (cases that changed: b)" in stale.message()
    layout = RecordResult(path, stale=True, cases=["a"])
    assert layout.exit_code == 1 and "only the byte layout" in layout.message()
    written = RecordResult(path, stale=True, changed_cases=["b"], written=True, cases=["a", "b"])
    assert written.exit_code == 0 and written.message().startswith(f"wrote {path}")


def test_the_command_line_check_says_up_to_date():
    # `dlgrade record NAME --check` is the library's record(check=True) (every assignment is
    # checked in process above); one run through the CLI for its message and exit status
    run = subprocess.run([sys.executable, "-m", "grader", "record", "facenet", "--check"],
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "up to date" in run.stdout

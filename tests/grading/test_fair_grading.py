"""Scores that mean what they say: public data cannot be replayed for points, the maximum score
does not move with what was submitted, student mode says what it leaves out, and each cause of
failure is explained once. Every submission is graded through the CLI in a subprocess."""
from __future__ import annotations

import base64
import hashlib
import io
import re
import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from gradingkit import ROOT, check_honest, make_submission, reference_source, run_grader

LINEAR = "linear_attention"
FUNCTIONS = ("softmax_attention", "polynomial_feature_map", "random_feature_map", "softmax_kernel_feature_map",
             "kernel_attention", "causal_kernel_attention")


# ---- public data replayed -----------------------------------------------------------------

def _key(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def _golden_lookup_table() -> dict:
    """What a student can build from the student bundle: the public inputs (public seeds) and
    the golden expected values, keyed by a hash of the first input tensor."""
    from grader import assignment
    from grader.record import golden_cases, public_inputs
    from grader.sandbox import wire

    a = assignment.load(LINEAR)
    golden = wire.decode(a.golden_path.read_bytes(), trusted=True)
    table = {}
    for case in golden_cases(a):
        expected = golden[case.name]["expected"]
        if type(expected) is not torch.Tensor:
            continue                               # gradient cases: a lookup cannot fake autograd
        first = public_inputs(a, case)[case.call.args[0]]
        table[_key(first)] = expected
    return table


LOOKUP = textwrap.dedent('''
    import base64 as _b64
    import hashlib as _hashlib
    import io as _io

    import torch

    _TABLE = torch.load(_io.BytesIO(_b64.b64decode({blob!r})), weights_only=True)


    def _lookup(*args, **kwargs):
        key = _hashlib.sha256(args[0].contiguous().numpy().tobytes()).hexdigest()
        if key not in _TABLE:
            raise LookupError("not a public input: no recorded answer")
        return _TABLE[key].clone()

''') + "".join(f"\n{name} = _lookup\n" for name in FUNCTIONS)


def test_a_lookup_table_of_public_answers_earns_nothing_in_staff_mode(tmp_path, schema):
    buffer = io.BytesIO()
    torch.save(_golden_lookup_table(), buffer)
    source = LOOKUP.format(blob=base64.b64encode(buffer.getvalue()).decode())
    folder = make_submission(tmp_path / "lookup", source, with_answers=False)

    # positive control: against the golden files (student mode) the table does answer
    student = run_grader(folder, tmp_path / "student.json", extra_args=("--mode", "student"))
    check_honest(student, schema)
    replayed = [t for t in student.code_cases() if t["tags"][0] == "value" and t["score"] == t["max_score"]]
    assert len(replayed) >= 5, student.describe()

    staff = run_grader(folder, tmp_path / "staff.json")
    check_honest(staff, schema)
    for test in staff.code_cases():
        assert test["score"] == 0, staff.describe()
    for name in (t["name"] for t in replayed):
        assert "not a public input" in staff.by_name[name]["output"], staff.describe()


# ---- what student mode leaves out, and the maximum score ------------------------------------

def test_student_mode_says_what_it_leaves_out(tmp_path, schema):
    from grader import assignment

    a = assignment.load(LINEAR)
    graded = run_grader(ROOT / "examples" / "linear_attention_submission", tmp_path / "r.json",
                        extra_args=("--mode", "student"))
    check_honest(graded, schema)
    hidden = [c for c in a.cases if not c.public]
    answers = [c for c in a.cases if c.public and type(c).__name__ == "Answer"]
    output = graded.results["output"]
    assert f"{len(hidden)} case(s) worth {sum(c.points for c in hidden):g} points" in output, output
    assert "hidden" in output and "staff" in output, output
    assert f"{len(answers)} case(s) worth {sum(c.points for c in answers):g} points" in output, output
    assert {t["name"] for t in graded.tests} == {c.name for c in a.cases if c.public and c not in answers}
    # without CUDA the GPU timing case is skipped: reported as such, worth nothing here
    gpu = [t for t in graded.tests if t["tags"][0] == "gputiming"]
    if gpu and not torch.cuda.is_available():
        assert all("skipped" in t["tags"] and t["max_score"] == 0 and "skipped: no CUDA device" in t["output"] for t in gpu)
        assert "skipped here (not counted)" in output


# ---- one message per cause ------------------------------------------------------------------

def test_a_missing_file_and_missing_answers_are_explained_once(tmp_path, schema):
    (tmp_path / "empty").mkdir()
    graded = run_grader(tmp_path / "empty", tmp_path / "r.json")
    check_honest(graded, schema)
    code = graded.code_cases()
    full = [t for t in code if "linear_attention.py was not found in the submission" in t["output"]
            and "explained in the case" not in t["output"]]
    assert len(full) == 1, graded.describe()
    pointers = [t for t in code if f"explained in the case {full[0]['name']!r}" in t["output"]]
    assert len(pointers) == len(code) - 1, graded.describe()
    answers = [t for t in graded.tests if t["tags"][0] == "answer"]
    assert sum("is not in the submission" in t["output"] for t in answers) == 1, graded.describe()
    assert all("answers.toml" in t["output"] for t in answers)


def test_an_exception_is_reported_once_per_case(tmp_path, schema):
    source = reference_source().replace("def softmax_attention(Q, K, V, causal=False):",
                                        "def softmax_attention(Q, K, V, causal=False):\n"
                                        "    return getattr(Q, 'my_own_bug')", 1)
    graded = run_grader(make_submission(tmp_path / "raises", source), tmp_path / "r.json")
    check_honest(graded, schema)
    targeted = [t for t in graded.code_cases() if t["name"].startswith("softmax_attention")]
    assert targeted
    for test in targeted:
        assert test["output"].count("AttributeError") == 1, test["output"]
        assert "my_own_bug" in test["output"] and "linear_attention.py" in test["output"]


# ---- minbert ----------------------------------------------------------------------------------

def _minbert_data() -> Path:
    from grader.assignment import load

    return load("minbert").data_dir


minbert = pytest.mark.skipif(not _minbert_data().is_dir(), reason=f"course data directory {_minbert_data()} missing")
PREDICTIONS = ("sst-dev", "sst-test", "cfimdb-dev", "cfimdb-test")


def _copy_labels_as_predictions(folder: Path) -> None:
    """Prediction files written straight from the public labels: no model at all."""
    data = _minbert_data()
    for name in PREDICTIONS:
        lines = []
        for line in (data / f"{name}.txt").read_text().splitlines():
            label, sentence = (part.strip() for part in line.split("|||"))
            lines.append(f"{label} ||| {sentence.lower()}")
        (folder / f"{name}-output.txt").write_text("\n".join(lines) + "\n")


@minbert
def test_labels_copied_into_prediction_files_earn_format_points_only(tmp_path, schema):
    folder = tmp_path / "starter_with_labels"
    shutil.copytree(ROOT / "assignments" / "minbert" / "starter", folder)
    _copy_labels_as_predictions(folder)
    graded = run_grader(folder, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    files = [graded.by_name[f"{name}-output.txt"] for name in PREDICTIONS]
    for test in files:
        assert test["score"] == pytest.approx(0.3 * 10), graded.describe()
    assert any("accuracy not counted" in t["output"] for t in files), graded.describe()

    # the maximum does not depend on which files were submitted
    bare = tmp_path / "starter_only"
    shutil.copytree(ROOT / "assignments" / "minbert" / "starter", bare)
    without = run_grader(bare, tmp_path / "r2.json", assignment="minbert")
    check_honest(without, schema)
    assert sum(t["max_score"] for t in without.tests) == sum(t["max_score"] for t in graded.tests)
    assert without.by_name["cfimdb-test-output.txt"]["max_score"] == graded.by_name["cfimdb-test-output.txt"]["max_score"]


FIXTURE_REPLAY = '''

# what a student who copied optimizer_test.npy's numbers into their code would hold
_FIXTURE = torch.tensor({values!r})


class AdamW(AdamW):
    def step(self, closure=None):
        for group in self.param_groups:
            course = group["lr"] == 1e-3 and group["weight_decay"] == 1e-4
            for p in group["params"]:
                if p.grad is None:
                    continue
                if course and p.shape == _FIXTURE.shape:
                    p.data.copy_(_FIXTURE.to(p.dtype))          # the answer, whatever the steps
                else:
                    p.data.add_(p.grad, alpha=-group["lr"])      # plain SGD otherwise
        return None
'''


@minbert
def test_an_optimizer_that_replays_the_course_fixture_does_not_earn_it(tmp_path, schema):
    import numpy as np

    folder = tmp_path / "replay"
    folder.mkdir()
    for name in ("bert.py", "classifier.py", "optimizer.py"):
        shutil.copy(ROOT / "reference" / "bert" / name, folder / name)
    values = np.load(_minbert_data() / "optimizer_test.npy").tolist()
    (folder / "optimizer.py").write_text((folder / "optimizer.py").read_text() + FIXTURE_REPLAY.format(values=values))
    graded = run_grader(folder, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    course = graded.by_name["AdamW: the course's optimizer_test.npy"]
    assert course["score"] == 0 and "not counted" in course["output"], graded.describe()
    assert "output: ok" in course["output"], "the replayed numbers do match the fixture"
    for name in ("AdamW: no weight decay, other betas and eps", "AdamW: weight decay"):
        assert graded.by_name[name]["score"] == 0 and name in course["output"], graded.describe()

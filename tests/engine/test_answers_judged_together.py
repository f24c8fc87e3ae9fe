"""The symbolic answers are judged in one bounded helper per run; if that helper fails (a
pathological answer took it past its time or memory), each answer is judged in a helper of its
own, so that only the question that caused it loses its points."""
from __future__ import annotations

from pathlib import Path

from grader import assignment as assignments
from grader import bounded
from grader.cases import Answer

ROOT = Path(__file__).resolve().parents[2]
ANSWERS = (ROOT / "reference" / "attention" / "answers.toml").read_bytes()


class _Context:
    """Just what Answer.run asks of a grading context; `judge` runs in this process, and the
    helper that judges every answer at once fails whenever `together_fails`."""

    def __init__(self, assignment, raw: bytes, together_fails: bool):
        self.assignment = assignment
        self.submission = type("Submission", (), {"files": {"answers.toml": raw}})()
        self.together_fails = together_fails
        self.helpers: list[str] = []
        self._once: dict = {}

    def once(self, key, compute):
        if key not in self._once:
            self._once[key] = compute()
        return self._once[key]

    def judge(self, fn, *args, what: str, timeout: float, **_):
        self.helpers.append(what)
        if self.together_fails and len(args) == 2:
            return bounded.BoundedFailure("it took longer than 15 s")
        return fn(*args)

    def tell_once(self, cause, message, case, short):
        return message


def _answer_cases():
    assignment = assignments.load("linear_attention")
    return assignment, [c for c in assignment.cases if isinstance(c, Answer)]


def test_every_answer_is_judged_in_one_helper_per_run():
    assignment, cases = _answer_cases()
    ctx = _Context(assignment, ANSWERS, together_fails=False)
    verdicts = [case.run(ctx) for case in cases]
    assert all(v.score == v.max_score > 0 for v in verdicts)
    assert ctx.helpers == ["your answers in answers.toml"]


def test_when_the_shared_helper_fails_each_answer_is_judged_alone():
    assignment, cases = _answer_cases()
    wrong = cases[0].question.id
    raw = b"\n".join(line if not line.startswith(wrong.encode() + b" ") else wrong.encode() + b' = "7"'
                     for line in ANSWERS.splitlines())
    ctx = _Context(assignment, raw, together_fails=True)
    verdicts = {case.question.id: case.run(ctx) for case in cases}
    assert verdicts[wrong].score == 0
    assert all(v.score == v.max_score > 0 for q, v in verdicts.items() if q != wrong)
    assert ctx.helpers[0] == "your answers in answers.toml"
    assert ctx.helpers[1:] == [f"your answer to {case.question.id}" for case in cases]

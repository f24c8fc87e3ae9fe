"""A case's verdict, in parts: what was called, what came of it, and what a student can do.

Renderers (grader/feedback.py) turn the parts into terminal text, Markdown (Gradescope's
results.json) and HTML, so that each part is shown as what it is: a student's own output
or error verbatim in a code block, the staff's advice as prose.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Verdict:
    score: float
    max_score: float
    message: str                     # the outcome: the comparison, the measurement, the error
    status: str = ""                 # "passed" / "failed"; derived when empty
    hint: str = ""                   # the named likely mistake, when one matched
    student_output: str = ""         # what the student's code printed (never parsed)
    skipped: bool = False
    extra: dict = field(default_factory=dict)
    called: str = ""                 # what was called, on what ("called f(Q: [2, 16, 8] float64)")
    feedback: str = ""               # the staff's advice on a failure: what to look at
    notes: tuple = ()                # more to know: a starter version judged by, a gate not met

    def __post_init__(self):
        if not self.status:
            self.status = "passed" if self.score >= self.max_score else "failed"
        self.notes = tuple(self.notes)

    @property
    def failed(self) -> bool:
        return self.status != "passed" and not self.skipped

"""`dlgrade verify`: prove the tests are good before a homework ships.

The reference must score full marks, the untouched starter zero (without crashing the
grader), and every known mistake must lose points somewhere: the mutation score.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignment import Assignment
from grader.reported import LoggedValue, reference_report, reported_file
from grader.runner import Report, grade
from grader.sandbox.cleanup import RunDirectory
from grader.sandbox.zygote import Sandbox


@dataclass
class VerifyResult:
    reference: Report
    starter: Report
    mutants: list[tuple[object, Report]] = field(default_factory=list)
    variants: list[tuple[object, Report]] = field(default_factory=list)

    @property
    def caught(self) -> list:
        return [m for m, r in self.mutants if r.score < r.max_score]

    @property
    def rejected_variants(self) -> list:
        return [v for v, r in self.variants if r.score < r.max_score]

    @property
    def ok(self) -> bool:
        return (self.reference.score == self.reference.max_score and self.starter.score == 0
                and len(self.caught) == len(self.mutants) and not self.rejected_variants)

    def lines(self) -> list[str]:
        out = [f"reference: {self.reference.score:g} / {self.reference.max_score:g}"]
        out += [f"  reference lost points on: {c.name}: {v.message.splitlines()[-1]}"
                for c, v in self.reference.results if v.score < v.max_score]
        out.append(f"starter: {self.starter.score:g} / {self.starter.max_score:g}")
        out += [f"  starter earned points on: {c.name}" for c, v in self.starter.results if v.score > 0]
        for mutant, report in self.mutants:
            lost = [(c.name, v) for c, v in report.results if v.score < v.max_score]
            hinted = sum(1 for _, v in lost if mutant.hint in v.hint)
            if lost:
                out.append(f"mutant {mutant.name}: caught, loses {report.max_score - report.score:g} points "
                           f"in {len(lost)} case(s) ({', '.join(n for n, _ in lost[:4])}{', ...' if len(lost) > 4 else ''}); "
                           f"named in {hinted} of them")
            else:
                out.append(f"mutant {mutant.name}: NOT CAUGHT (full marks)")
        out.append(f"mutation score: {len(self.caught)}/{len(self.mutants)}")
        for variant, report in self.variants:
            lost = [f"{c.name} ({v.message.splitlines()[-1]})" for c, v in report.results if v.score < v.max_score]
            out.append(f"accepted variant {variant.name}: " + ("full marks" if not lost else
                       f"REJECTED, loses {report.max_score - report.score:g} points in {'; '.join(lost[:3])}"))
        if self.variants:
            out.append(f"accepted variants: {len(self.variants) - len(self.rejected_variants)}/{len(self.variants)} at full marks")
        return out


def _write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    return folder


def reference_submission(assignment: Assignment) -> dict[str, str | bytes]:
    """The reference's files, and the self-reported file a notebook running it would upload."""
    files: dict[str, str | bytes] = {name: path.read_text() for name, path in assignment.reference_files.items()}
    if "reported" in assignment.manifest:
        files[reported_file(assignment)] = reference_report(assignment)
    for case in assignment.cases:
        if isinstance(case, LoggedValue) and case.file not in files:   # the log its notebook would write
            files[case.file] = json.dumps({"time": 0.0, **case.expected(assignment)})
    return files


def verify(assignment: Assignment, sandbox: Sandbox | None = None, progress=None, on_case=None) -> VerifyResult:
    """`progress(line)` as each graded submission finishes; `on_case(case, verdict, done, total)` as each case does."""
    own = sandbox is None
    sandbox = sandbox or Sandbox.start()
    try:
        with RunDirectory("dlgrade-verify-") as tmp:
            tmp = Path(tmp)
            reference_files = reference_submission(assignment)
            reference = grade(assignment, _write(tmp / "reference", reference_files), sandbox, mode="staff",
                              progress=on_case)
            if progress:
                progress(f"reference: {reference.score:g} / {reference.max_score:g}")
            starter = grade(assignment, assignment.starter, sandbox, mode="staff", progress=on_case)
            if progress:
                progress(f"starter: {starter.score:g} / {starter.max_score:g}")
            result = VerifyResult(reference, starter)
            # a patched file can only change the cases that run it: only those are graded again
            for kind, patches, found in (("mutant", assignment.mutants, result.mutants),
                                         ("variant", assignment.variants, result.variants)):
                for patch in patches:
                    files = dict(reference_files)
                    files[patch.file] = patch.apply(files[patch.file])
                    if "reported" in assignment.manifest:   # the file its own notebook would save
                        files[reported_file(assignment)] = reference_report(assignment, patch)
                    report = grade(assignment, _write(tmp / f"{kind}-{patch.name}", files), sandbox, mode="staff",
                                   only=assignment.case_names_using(patch.file), progress=on_case)
                    found.append((patch, report))
                    if progress:
                        progress(f"{kind} {patch.name}: {report.score:g} / {report.max_score:g}")
            return result
    finally:
        if own:
            sandbox.close()

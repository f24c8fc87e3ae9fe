"""The prediction files of minbert (sst-dev-output.txt, ...) as graded cases: format, line count
and sentence order, then accuracy against the labels in the data directory, by bands relative to
the course's reference accuracies. Every setting is in the manifest's [predictions] table.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

from grader import bounded
from grader.cases import Case, Verdict

from . import prediction_files


def _score_predictions(text: bytes, data: list, name: str) -> dict:
    """In a bounded helper: read and score one prediction file against the labels."""
    return dataclasses.asdict(prediction_files.score(text.decode("utf-8", "replace"), data, name=name))


@dataclass
class Predictions(Case):
    """A prediction file of the submission (`{pred} ||| {sentence}` lines), scored in the parent
    against the labels `labels` in the data directory (see prediction_files.py).

    The manifest's [predictions] holds every setting: `format_share` of the points is for a file
    with one well-formed line per example in the data's order; the rest is for accuracy, by
    `bands` of (share of the file's `reference_accuracy`, share of those points). Where the
    labels are hidden (all one class, as the public CFIMDB test file), accuracy is not scored and the case is worth only its format points, whether
    or not the file was submitted. Accuracy points also need code that runs: the manifest's
    `[predictions] accuracy_requires` ("model-code": at least one case of the files named in
    `accuracy_code`; "sanity-check": the case named in `sanity_case`); a prediction file is
    text anyone can write, so on its own it proves only its format."""
    file: str = ""
    labels: str = ""

    def _labels(self, ctx):
        key = ("labels", str(ctx.data_dir), self.labels)
        if key not in ctx.assignment.cache:
            ctx.assignment.cache[key] = prediction_files.read_data_file(ctx.data_dir / self.labels)
        return ctx.assignment.cache[key]

    def run(self, ctx) -> Verdict:
        if ctx.data_dir is None:
            return Verdict(0.0, self.points, "internal grader error: no data directory is configured for the labels; "
                           "please tell the course staff", status="failed")
        try:
            data = self._labels(ctx)
        except (OSError, ValueError) as exc:
            return Verdict(0.0, self.points, f"internal grader error: the labels {ctx.data_dir / self.labels} could "
                           f"not be read ({exc}); please tell the course staff", status="failed")
        settings = ctx.assignment.manifest["predictions"]
        format_points = self.points * settings["format_share"]
        hidden = len({e.label for e in data}) < 2
        max_score = format_points if hidden else self.points
        text = ctx.submission.files.get(self.file)
        if text is None:
            return Verdict(0.0, max_score, f"{self.file} is not in the submission (run the training script with "
                           f"--dev_out/--test_out and include its output files)", feedback=self.feedback)
        judged = ctx.judge(_score_predictions, text, data, self.labels, what=self.file, timeout=30)
        if isinstance(judged, bounded.BoundedFailure):
            return Verdict(0.0, max_score, f"{self.file} could not be scored: {judged.reason}")
        result = prediction_files.PredictionScore(**judged)
        reference_accuracy = settings["reference_accuracy"][self.file]
        bands = tuple(tuple(b) for b in settings["bands"])
        lines = [f"{self.file}: {result.n_predictions} lines for {result.n_labels} examples"
                 + (f", format {result.format!r}" if result.format else "")]
        lines += [f"  - {problem}" for problem in result.problems]
        if result.accuracy is None:
            return Verdict(0.0, max_score, "\n".join(lines + ["  not scored: the file could not be matched to the data"]))
        well_formed = result.alignment == "position"
        earned = format_points if well_formed else format_points / 2
        if hidden:
            lines.append(f"  accuracy not scored: the labels of {self.labels} in {ctx.data_dir} are hidden "
                         "(staff: grade with the real labels via --data-dir)")
            return Verdict(earned, max_score, "\n".join(lines))
        accuracy_points = prediction_files.thresholds_points(result.accuracy, reference_accuracy, bands) * \
            (self.points - format_points)
        full = max(bands, key=lambda b: b[1])[0] * reference_accuracy
        lines.append(f"  accuracy {result.accuracy:.3f} ({result.n_correct}/{result.n_labels}); the reference "
                     f"reaches {reference_accuracy:.3f}; full points from {full:.3f}")
        return Verdict(round(earned + accuracy_points, 4), self.points, "\n".join(lines),
                       extra={"accuracy_points": round(accuracy_points, 4)})

    def gate(self, verdict: Verdict, verdicts: dict, ctx) -> Verdict:
        """Accuracy points only where the model code runs (see the class docstring)."""
        accuracy = verdict.extra.get("accuracy_points", 0.0)
        if not accuracy:
            return verdict
        settings = ctx.assignment.manifest["predictions"]
        if settings["accuracy_requires"] == "sanity-check":
            needed = [settings["sanity_case"]]
            ok = all(verdicts.get(n) is not None and verdicts[n].status == "passed" for n in needed)
            why = f"the case {needed[0]!r} passes"
        else:
            files = settings["accuracy_code"]
            needed = sorted({n for f in files for n in ctx.assignment.case_names_using(f)} & set(verdicts))
            ok = not needed or any(verdicts[n].score > 0 for n in needed)
            why = f"at least one case of {', '.join(files)} earns points"
        if ok:
            return verdict
        note = (f"accuracy not counted ({accuracy:g} points): a prediction file is text anyone can write; its "
                f"accuracy counts only when {why}")
        return replace(verdict, score=round(verdict.score - accuracy, 4), status="", notes=(*verdict.notes, note))

    def data_warnings(self, data_dir) -> list[str]:
        """What staff should know of the labels this case will read from `data_dir`."""
        if data_dir is None or not (data_dir / self.labels).is_file():
            return [f"{self.labels} is not in the data directory {data_dir}: the case {self.name!r} will fail; "
                    "pass the labels with --data-dir"]
        try:
            data = prediction_files.read_data_file(data_dir / self.labels)
        except (OSError, ValueError) as exc:
            return [f"{self.labels} cannot be read from {data_dir} ({exc}); the case {self.name!r} will fail"]
        classes = {e.label for e in data}
        if len(classes) < 2:
            return [f"{self.labels} in {data_dir}: all {len(data)} labels are {', '.join(map(str, classes)) or 'empty'} "
                    f"(the public, hidden labels): the accuracy of {self.file} will not be scored; "
                    "package the real labels with --data-dir"]
        return []

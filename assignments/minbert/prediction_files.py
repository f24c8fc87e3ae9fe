"""Read and score the prediction files of the minbert homework (sst-dev-output.txt, ...).

The course's classifier.py writes one line per example, in the order of the data file:

    {pred} ||| {sentence}                   the current format
    {sentence} ||| {true} ||| {pred}        a 2021 variant, still found in circulation

where `sentence` is the data file's sentence lowercased and stripped. Data files have lines
`{label} ||| {sentence}`.

`score(predictions_text, data)` returns a PredictionScore: the accuracy (None when the file cannot
be matched to the data), the counts, the format that was seen, and `problems`: sentences written
for the student, each naming a line number where one applies. Nothing here raises on a bad
submission; everything a student can get wrong ends up in `problems`. Pure functions of text,
no torch needed.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

SEPARATOR = "|||"
FORMAT_CURRENT = "{pred} ||| {sentence}"
FORMAT_2021 = "{sentence} ||| {true} ||| {pred}"

# how many offending lines a problem message quotes before it summarises
_EXAMPLES = 3
_INT = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Example:
    """One line of a data file."""
    line: int            # 1-based line number in the data file
    label: int
    sentence: str


@dataclass(frozen=True)
class PredictionLine:
    """One non-empty line of a prediction file, as far as it could be read."""
    line: int                    # 1-based line number in the prediction file
    raw: str
    sentence: str | None         # None: the line is not in the file's format
    pred: int | None             # None: missing or not an integer
    pred_text: str | None        # the prediction as written, for messages
    true: int | None = None      # the label written in the 2021 format


@dataclass
class ParsedPredictions:
    format: str | None           # FORMAT_CURRENT, FORMAT_2021, or None when neither fits
    lines: list[PredictionLine]
    problems: list[str] = field(default_factory=list)


@dataclass
class PredictionScore:
    """What a student sees about one prediction file.

    accuracy: share of data lines predicted right, or None when the file could not be matched to
    the data (wrong number of lines, unknown sentences, empty file). format: the layout that was
    recognised (FORMAT_CURRENT or FORMAT_2021) or None. problems: messages for the student.
    alignment: 'position' (line i is data line i), 'sentence' (lines were reordered and matched
    by their sentences) or None.
    """
    accuracy: float | None
    n_predictions: int
    n_labels: int
    format: str | None
    problems: list[str] = field(default_factory=list)
    n_correct: int | None = None
    alignment: str | None = None


def normalize_sentence(sentence: str) -> str:
    """The form in which sentences are compared: lowercased, whitespace collapsed to one space."""
    return " ".join(sentence.lower().split())


def _lines(text: str) -> list[str]:
    """Lines without line endings (LF, CRLF or CR), a leading BOM or trailing whitespace."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return [line.rstrip() for line in text.splitlines()]


def _shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_int(text: str) -> int | None:
    text = text.strip()
    return int(text) if _INT.fullmatch(text) else None


def parse_data(text: str) -> tuple[list[Example], list[str]]:
    """Examples of a data file's text (`label ||| sentence` per line) and problems found.

    Blank lines are skipped; a line without ' ||| ' or with a non-integer label is reported and
    skipped. (Only staff files are parsed with this, so problems here are staff errors.)
    """
    examples, problems = [], []
    for number, line in enumerate(_lines(text), start=1):
        if not line.strip():
            continue
        label, sep, sentence = line.partition(SEPARATOR)
        value = _as_int(label)
        if not sep or value is None:
            problems.append(f"data line {number} is not 'label ||| sentence': {_shorten(line)!r}")
            continue
        examples.append(Example(number, value, sentence.strip()))
    return examples, problems


def read_data_file(path: str | Path) -> list[Example]:
    """Examples of a data file; raises ValueError if the file has malformed lines."""
    examples, problems = parse_data(Path(path).read_text(encoding="utf-8"))
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems[:_EXAMPLES]))
    return examples


def _read_current(number: int, line: str) -> PredictionLine | None:
    pred_text, sep, sentence = line.partition(SEPARATOR)
    if not sep:
        return None
    return PredictionLine(number, line, sentence.strip(), _as_int(pred_text), pred_text.strip())


def _read_2021(number: int, line: str) -> PredictionLine | None:
    parts = line.rsplit(SEPARATOR, 2)
    if len(parts) != 3:
        return None
    sentence, true_text, pred_text = parts
    true = _as_int(true_text)
    if true is None:
        return None           # the middle field is what tells this format apart
    return PredictionLine(number, line, sentence.strip(), _as_int(pred_text), pred_text.strip(), true)


def _fits(reading: PredictionLine | None) -> bool:
    return reading is not None and reading.pred is not None


def parse_predictions(text: str) -> ParsedPredictions:
    """Read a prediction file's text, recognising its format from the lines themselves.

    The format that reads the most lines with an integer prediction wins, then the one whose
    layout the most lines have; the current one on a tie. Lines that do not fit it are kept with sentence None and reported; blank lines are
    skipped, and reported only when they are not at the end of the file.
    """
    lines = _lines(text)
    while lines and not lines[-1].strip():
        lines.pop()
    numbered = [(number, line) for number, line in enumerate(lines, start=1)]
    blank = [number for number, line in numbered if not line.strip()]
    content = [(number, line) for number, line in numbered if line.strip()]

    current = [_read_current(n, line) for n, line in content]
    old = [_read_2021(n, line) for n, line in content]
    # ranked by lines with an integer prediction, then by lines that merely have the layout
    score_current = (sum(_fits(r) for r in current), sum(r is not None for r in current))
    score_old = (sum(_fits(r) for r in old), sum(r is not None for r in old))

    problems = []
    if not content:
        return ParsedPredictions(None, [], ["the file is empty"])
    if score_current[1] == 0 and score_old[1] == 0:
        fmt, readings = None, current
        problems.append(f"no line has the form '{FORMAT_CURRENT}' (or '{FORMAT_2021}'); "
                        f"line {content[0][0]} is {_shorten(content[0][1])!r}")
    elif score_old > score_current:
        fmt, readings = FORMAT_2021, old
    else:
        fmt, readings = FORMAT_CURRENT, current

    parsed = []
    unreadable, non_integer = [], []
    for (number, line), reading in zip(content, readings):
        if reading is None:
            parsed.append(PredictionLine(number, line, None, None, None))
            unreadable.append(number)
            continue
        if reading.pred is None:
            non_integer.append(reading)
        parsed.append(reading)

    if blank:
        problems.append(f"{len(blank)} blank line(s) inside the file were ignored (first: line {blank[0]})")
    if fmt is not None and unreadable:
        first = next(p for p in parsed if p.line == unreadable[0])
        problems.append(f"{len(unreadable)} line(s) do not have the form '{fmt}' (first: line "
                        f"{first.line}, {_shorten(first.raw)!r})")
    if fmt is not None and non_integer:
        shown = ", ".join(f"line {r.line} has {r.pred_text!r}" for r in non_integer[:_EXAMPLES])
        problems.append(f"{len(non_integer)} prediction(s) are not integers and count as wrong ({shown})")
    return ParsedPredictions(fmt, parsed, problems)


def _align_by_sentence(lines: Sequence[PredictionLine], data: Sequence[Example]) -> list[int] | None:
    """For each data example, the index of the prediction line with the same sentence, or None
    when the two files do not hold the same sentences. Repeated sentences pair up in order."""
    queues: dict[str, list[int]] = defaultdict(list)
    for index, line in enumerate(lines):
        if line.sentence is None:
            return None
        queues[normalize_sentence(line.sentence)].append(index)
    order = []
    for example in data:
        queue = queues.get(normalize_sentence(example.sentence))
        if not queue:
            return None
        order.append(queue.pop(0))
    return order


def score(predictions: str, data: str | Sequence[Example], *, name: str = "the data file") -> PredictionScore:
    """Score a prediction file's text against a data file (its text, or parsed Examples).

    The student sees, in `problems`: a wrong number of lines ("has 1100 prediction lines, but
    the data file has 1101"), the first line whose sentence is not the data's sentence on that
    line, lines that are reordered (then matched by sentence and still scored), sentences that
    are not in the data (then no accuracy), and for the 2021 format, written true labels that
    differ from the data's. `name` names the data in those messages.
    """
    if isinstance(data, str):
        data, data_problems = parse_data(data)
        if data_problems:
            raise ValueError("malformed data file: " + "; ".join(data_problems[:_EXAMPLES]))
    data = list(data)
    parsed = parse_predictions(predictions)
    problems = list(parsed.problems)
    lines = parsed.lines
    result = PredictionScore(None, len(lines), len(data), parsed.format, problems)
    if not lines or parsed.format is None:
        return result

    if len(lines) != len(data):
        problems.append(f"the file has {len(lines)} prediction lines, but {name} has {len(data)} "
                        f"examples: write exactly one line per example, in the data's order")
        missing = Counter(normalize_sentence(e.sentence) for e in data) - Counter(
            normalize_sentence(l.sentence) for l in lines if l.sentence is not None)
        extra = Counter(normalize_sentence(l.sentence) for l in lines if l.sentence is not None) - Counter(
            normalize_sentence(e.sentence) for e in data)
        if missing:
            problems.append(f"{sum(missing.values())} sentence(s) of {name} have no prediction "
                            f"(e.g. {_shorten(next(iter(missing)))!r})")
        if extra:
            problems.append(f"{sum(extra.values())} line(s) have sentences that are not in {name} "
                            f"(e.g. {_shorten(next(iter(extra)))!r})")
        return result

    first_mismatch = next(
        (i for i, (line, example) in enumerate(zip(lines, data))
         if line.sentence is None or normalize_sentence(line.sentence) != normalize_sentence(example.sentence)),
        None)
    if first_mismatch is None:
        order = list(range(len(data)))
        result.alignment = "position"
    else:
        line, example = lines[first_mismatch], data[first_mismatch]
        written = "no sentence" if line.sentence is None else repr(_shorten(line.sentence))
        problems.append(f"line {line.line}: expected the sentence {_shorten(example.sentence)!r} "
                        f"(line {example.line} of {name}), found {written}")
        order = _align_by_sentence(lines, data)
        if order is None:
            known = Counter(normalize_sentence(e.sentence) for e in data)
            unknown = [l for l in lines if l.sentence is None
                       or not known[normalize_sentence(l.sentence)]]
            if unknown:
                problems.append(f"{len(unknown)} line(s) have sentences that are not in {name} "
                                f"(first: line {unknown[0].line}); no accuracy can be computed")
            else:
                problems.append(f"the sentences do not match those of {name} one for one; "
                                "no accuracy can be computed")
            return result
        problems.append(f"the lines are not in the order of {name}; they were matched to it by "
                        "sentence (write them in the data's order)")
        result.alignment = "sentence"

    correct = 0
    wrong_true = []
    for example, index in zip(data, order):
        line = lines[index]
        if line.pred is not None and line.pred == example.label:
            correct += 1
        if parsed.format == FORMAT_2021 and line.true != example.label:
            wrong_true.append(line.line)
    if wrong_true:
        problems.append(f"{len(wrong_true)} line(s) carry a true label that differs from {name} "
                        f"(first: line {min(wrong_true)}); the data's labels were used")
    result.n_correct = correct
    result.accuracy = correct / len(data) if data else None
    return result


def score_files(prediction_path: str | Path, data_path: str | Path) -> PredictionScore:
    """`score` on two files; undecodable bytes in the prediction file are replaced, not fatal."""
    predictions = Path(prediction_path).read_text(encoding="utf-8", errors="replace")
    return score(predictions, read_data_file(data_path), name=Path(data_path).name)


def thresholds_points(accuracy: float | None, reference_accuracy: float,
                      bands: Sequence[tuple[float, float]], points: float = 1.0) -> float:
    """Points for an accuracy, by bands relative to the reference solution's accuracy.

    bands: (share of the reference accuracy, share of the points), e.g. [(0.95, 1.0), (0.85, 0.5)]:
    at least 95% of the reference accuracy earns all points, at least 85% earns half, less earns
    nothing. The best band reached counts, whatever the order given. No accuracy earns nothing.
    """
    if reference_accuracy <= 0:
        raise ValueError(f"reference_accuracy must be positive, got {reference_accuracy}")
    for threshold, share in bands:
        if threshold < 0 or not 0 <= share <= 1:
            raise ValueError(f"bad band ({threshold}, {share}): need threshold >= 0 and 0 <= share <= 1")
    if accuracy is None:
        return 0.0
    # a tiny slack so that, e.g., 0.95 * 0.52 computed in binary still admits an accuracy of 0.494
    reached = [share for threshold, share in bands if accuracy >= threshold * reference_accuracy - 1e-12]
    return points * max(reached, default=0.0)

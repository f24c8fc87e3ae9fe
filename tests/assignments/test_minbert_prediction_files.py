"""Reading and scoring minbert prediction files (assignments/minbert/prediction_files.py)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from grader.assignment import load as load_assignment

MINBERT = load_assignment("minbert")     # also makes its files importable as a package

from dlgrade_assignments.minbert.prediction_files import (  # noqa: E402
    FORMAT_2021,
    FORMAT_CURRENT,
    normalize_sentence,
    parse_data,
    parse_predictions,
    read_data_file,
    score,
    score_files,
    thresholds_points,
)

DATA_DIR = MINBERT.data_dir   # manifest [data] dir, or $DLGRADE_DATA_DIR

DATA = """\
3 ||| It 's a lovely film .
1 ||| No one goes  unindicted here .
0 ||| Awful , just awful !
3 ||| A small gem .
"""
SENTS = ["It 's a lovely film .", "No one goes  unindicted here .", "Awful , just awful !", "A small gem ."]
LABELS = [3, 1, 0, 3]


def current(preds, sents=SENTS, end="\n"):
    """What the course's classifier.py writes: lowercased, stripped sentences."""
    return "".join(f"{p} ||| {s.lower().strip()}{end}" for p, s in zip(preds, sents))


def old(preds, trues=LABELS, sents=SENTS, end="\n"):
    return "".join(f"{s.lower().strip()} ||| {t} ||| {p}{end}" for p, t, s in zip(preds, trues, sents))


def real_data(name):
    path = DATA_DIR / name
    if not path.is_file():
        pytest.skip(f"course data {path} missing")
    return path


# ------------------------------------------------------------------ parsing


def test_parse_data():
    examples, problems = parse_data(DATA)
    assert problems == []
    assert [e.label for e in examples] == LABELS
    assert examples[1].sentence == "No one goes  unindicted here ."
    assert [e.line for e in examples] == [1, 2, 3, 4]
    _, problems = parse_data("1 ||| fine\nno separator here\nx ||| bad label\n")
    assert len(problems) == 2 and "line 2" in problems[0] and "line 3" in problems[1]


def test_normalize_sentence():
    assert normalize_sentence("  No One\tgoes   here .\r") == "no one goes here ."


def test_detects_current_format():
    parsed = parse_predictions(current([3, 1, 0, 3]))
    assert parsed.format == FORMAT_CURRENT
    assert [l.pred for l in parsed.lines] == [3, 1, 0, 3]
    assert parsed.lines[0].sentence == "it 's a lovely film ."
    assert parsed.problems == []


def test_detects_2021_format():
    parsed = parse_predictions(old([3, 2, 0, 3]))
    assert parsed.format == FORMAT_2021
    assert [l.pred for l in parsed.lines] == [3, 2, 0, 3]
    assert [l.true for l in parsed.lines] == LABELS
    assert parsed.lines[2].sentence == "awful , just awful !"


# ------------------------------------------------------------------ scoring


def test_perfect_current():
    result = score(current(LABELS), DATA)
    assert result.accuracy == 1.0
    assert (result.n_predictions, result.n_labels, result.n_correct) == (4, 4, 4)
    assert result.format == FORMAT_CURRENT
    assert result.alignment == "position"
    assert result.problems == []


def test_partial_2021():
    result = score(old([3, 2, 0, 1]), DATA)
    assert result.format == FORMAT_2021
    assert result.accuracy == 0.5
    assert result.problems == []


def test_2021_with_wrong_true_labels_is_noted_and_data_labels_used():
    result = score(old([3, 1, 0, 3], trues=[3, 1, 1, 3]), DATA)
    assert result.accuracy == 1.0
    assert len(result.problems) == 1
    assert "true label" in result.problems[0] and "line 3" in result.problems[0]


def test_crlf_trailing_whitespace_and_trailing_blank_lines():
    text = current(LABELS, end="  \r\n") + "\r\n\r\n"
    result = score(text, DATA)
    assert result.accuracy == 1.0 and result.problems == []
    result = score("\ufeff" + old(LABELS, end="\t\r\n"), DATA.replace("\n", "\r\n"))
    assert result.accuracy == 1.0 and result.format == FORMAT_2021 and result.problems == []


def test_sentences_compared_without_case_and_spacing():
    text = "".join(f"{p} |||    {s.upper()}   \n" for p, s in zip(LABELS, SENTS))
    assert score(text, DATA).accuracy == 1.0


def test_wrong_count():
    result = score(current(LABELS[:3], SENTS[:3]), DATA)
    assert result.accuracy is None
    assert result.n_predictions == 3 and result.n_labels == 4
    assert any("3 prediction lines" in p and "4" in p for p in result.problems)
    assert any("no prediction" in p and "a small gem ." in p for p in result.problems)

    result = score(current(LABELS + [1], SENTS + ["An extra line ."]), DATA, name="sst-dev.txt")
    assert result.accuracy is None
    assert any("5 prediction lines" in p and "sst-dev.txt" in p for p in result.problems)
    assert any("not in sst-dev.txt" in p and "an extra line ." in p for p in result.problems)


def test_reordered_lines_are_aligned_by_sentence():
    order = [2, 0, 3, 1]
    preds = [0, 3, 3, 2]           # right, right, right, wrong (true 1)
    text = current(preds, [SENTS[i] for i in order])
    result = score(text, DATA)
    assert result.alignment == "sentence"
    assert result.accuracy == 0.75
    assert any(p.startswith("line 1: expected the sentence") for p in result.problems)
    assert any("not in the order" in p for p in result.problems)


def test_wrong_sentence():
    sents = list(SENTS)
    sents[2] = "A different review ."
    result = score(current(LABELS, sents), DATA)
    assert result.accuracy is None
    assert result.alignment is None
    assert any(p.startswith("line 3: expected the sentence 'Awful , just awful !' (line 3 of the data file)")
               and p.endswith("found 'a different review .'") for p in result.problems)
    assert any("not in the data file" in p and "line 3" in p for p in result.problems)


@pytest.mark.parametrize("text", ["", "\n", "  \r\n\r\n"])
def test_empty_file(text):
    result = score(text, DATA)
    assert result.accuracy is None and result.n_predictions == 0 and result.format is None
    assert result.problems == ["the file is empty"]


def test_garbage_file():
    result = score("hello\nthis is not it\nat all\n4\n", DATA)
    assert result.accuracy is None and result.format is None
    assert "no line has the form" in result.problems[0] and "line 1" in result.problems[0]


def test_one_garbage_line_among_good_ones():
    lines = current(LABELS).splitlines()
    lines[1] = "garbage without separator"
    result = score("\n".join(lines) + "\n", DATA)
    assert result.format == FORMAT_CURRENT
    assert result.accuracy is None
    assert any("do not have the form" in p and "line 2" in p for p in result.problems)


def test_non_integer_prediction_counts_as_wrong():
    text = current(["3", "positive", "0.0", "3"])
    result = score(text, DATA)
    assert result.accuracy == 0.5
    assert result.alignment == "position"
    [problem] = result.problems
    assert "2 prediction(s) are not integers" in problem
    assert "line 2 has 'positive'" in problem and "line 3 has '0.0'" in problem


def test_all_predictions_non_integer_still_recognised():
    result = score(current(["pos", "neg", "neg", "pos"]), DATA)
    assert result.format == FORMAT_CURRENT
    assert result.accuracy == 0.0
    assert "4 prediction(s) are not integers" in result.problems[0]


def test_interior_blank_line_is_reported_but_harmless():
    lines = current(LABELS).splitlines()
    text = "\n".join(lines[:2] + [""] + lines[2:]) + "\n"
    result = score(text, DATA)
    assert result.accuracy == 1.0
    assert result.problems and "blank" in result.problems[0] and "line 3" in result.problems[0]


# ------------------------------------------------------------------ real data


def test_real_sst_dev():
    path = real_data("sst-dev.txt")
    data = read_data_file(path)
    assert len(data) == 1101
    labels = [e.label for e in data]
    perfect = "".join(f"{e.label} ||| {e.sentence.lower().strip()}\n" for e in data)
    assert score(perfect, data).accuracy == 1.0

    zeros = "".join(f"0 ||| {e.sentence.lower().strip()}\n" for e in data)
    counts = Counter(labels)
    assert score(zeros, data).accuracy == pytest.approx(counts[0] / len(data))        # 139 / 1101
    majority, n_majority = counts.most_common(1)[0]
    majority_text = zeros.replace("0 ||| ", f"{majority} ||| ")
    assert score(majority_text, data).accuracy == pytest.approx(n_majority / len(data))  # 289 / 1101

    # the 2021 format with Windows line endings
    assert score("".join(f"{e.sentence.lower()} ||| {e.label} ||| {e.label}\r\n" for e in data), data).accuracy == 1.0


def test_score_files(tmp_path):
    path = real_data("cfimdb-dev.txt")
    data = read_data_file(path)
    predictions = tmp_path / "cfimdb-dev-output.txt"
    predictions.write_text("".join(f"1 ||| {e.sentence.lower().strip()}\n" for e in data))
    result = score_files(predictions, path)
    n_ones = sum(e.label == 1 for e in data)
    assert result.accuracy == pytest.approx(n_ones / len(data))
    assert result.n_labels == len(data) == 245
    predictions.write_bytes(b"\xff\xfe garbage\n")
    result = score_files(predictions, path)
    assert result.accuracy is None and result.format is None


# ------------------------------------------------------------------ points


BANDS = [(0.95, 1.0), (0.85, 0.5)]


@pytest.mark.parametrize("accuracy, expected", [
    (0.52, 1.0),
    (0.494, 1.0),       # exactly 95%
    (0.49, 0.5),
    (0.442, 0.5),       # exactly 85%
    (0.44, 0.0),
    (0.60, 1.0),
    (None, 0.0),
])
def test_thresholds_points(accuracy, expected):
    assert thresholds_points(accuracy, 0.52, BANDS) == expected
    assert thresholds_points(accuracy, 0.52, list(reversed(BANDS)), points=4) == 4 * expected


def test_thresholds_points_boundary_is_inclusive_despite_rounding():
    # 0.85 * 0.34 is 0.28900000000000003 in binary; an accuracy of exactly 85% must still count
    assert 0.85 * 0.34 > 0.289
    assert thresholds_points(0.289, 0.34, BANDS) == 0.5


def test_thresholds_points_validation():
    with pytest.raises(ValueError):
        thresholds_points(0.5, 0.0, BANDS)
    with pytest.raises(ValueError):
        thresholds_points(0.5, 0.5, [(0.9, 1.5)])
    assert thresholds_points(0.5, 0.5, []) == 0.0

"""Student files written against older versions of the minbert starter grade like current ones.

Each folder under tests/fixtures/minbert_versions/ holds bert.py, classifier.py and optimizer.py
as a correct student would have written them against one version of the course's starter (its
README.md names the commits it models and the differences it carries): the 11-747 predecessor
(Spring 2021), 11-711 Fall 2021, Fall 2022, and the newest starter found (Fall 2023). Every folder
is graded through the CLI in a subprocess, like a real submission; the prediction files are left
out, so exactly the four `*-output.txt` cases lose their points and every code case must earn
full marks.

Four versions, one grading each (about 15 s apiece). The repository also has intermediate
commits (a black-formatted 11-747 classifier.py, comment-only edits of bert.py) that carry no
API difference of their own, so they are not graded separately.
"""
from __future__ import annotations

from grader.assignment import load as load_assignment
import pytest

from gradingkit import ROOT, check_honest, run_grader

FIXTURES = ROOT / "tests" / "fixtures" / "minbert_versions"
DATA = load_assignment("minbert").data_dir   # manifest [data] dir, or $DLGRADE_DATA_DIR
PREDICTION_SUFFIX = "-output.txt"

# The newest starter found (Fall 2023) departs from the others: its classifier.py imports pandas
# (the grader provides a stand-in, since grading never reads its CSV data) and its
# BertSelfAttention has no dropout (it is judged as that starter asked: without). It too must earn
# full marks, with notes that say how it was judged.
FALL_2023 = "11711-fall2023"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"course data directory {DATA} missing")


VERSIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) if FIXTURES.is_dir() else []


def test_the_fixtures_are_there():
    names = list(VERSIONS)
    assert len(names) >= 4, f"expected the starter-version fixtures under {FIXTURES}, found {names}"
    for name in names:
        folder = FIXTURES / name
        assert {"bert.py", "classifier.py", "optimizer.py", "README.md"} <= {p.name for p in folder.iterdir()}, name
        assert not list(folder.glob(f"*{PREDICTION_SUFFIX}")), f"{name}: the fixtures carry no prediction files"


def _lost(test: dict) -> str:
    output = test.get("output", "").strip().splitlines()
    shown = "\n      ".join(output[:8]) + ("\n      ..." if len(output) > 8 else "")
    return f"  - {test['name']}: {test['score']}/{test['max_score']}\n      {shown}"


@pytest.mark.parametrize("version", VERSIONS)
def test_starter_version_gets_full_marks_on_every_code_case(version, tmp_path, schema):
    folder = FIXTURES / version
    graded = run_grader(folder, tmp_path / "results.json", assignment="minbert")
    check_honest(graded, schema)

    code = [t for t in graded.tests if not t["name"].endswith(PREDICTION_SUFFIX)]
    predictions = [t for t in graded.tests if t["name"].endswith(PREDICTION_SUFFIX)]
    assert code and len(predictions) == 4, graded.describe()

    lost = [t for t in code if t["score"] < t["max_score"]]
    if lost:
        title = (folder / "README.md").read_text().splitlines()[0].lstrip("# ")
        pytest.fail(f"{version} ({title}): a correct submission written against that starter lost points "
                    f"on {len(lost)} code case(s):\n" + "\n".join(_lost(t) for t in lost), pytrace=False)

    # the prediction files were left out on purpose: they, and only they, cost points
    for test in predictions:
        assert test["score"] == 0 and "is not in the submission" in test["output"], _lost(test)


def test_fall_2023_train_mode_cases_say_how_they_were_judged(tmp_path, schema):
    graded = run_grader(FIXTURES / FALL_2023, tmp_path / "results.json", assignment="minbert")
    check_honest(graded, schema)
    for name in ("attention in train mode: dropout on the probabilities", "BertLayer forward in train mode"):
        test = graded.by_name[name]
        assert test["score"] == test["max_score"], _lost(test)
        assert "judged as the starter you wrote for asked: without attention dropout" in test["output"], _lost(test)

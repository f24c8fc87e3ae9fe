"""minbert graded as a careful TA would: submissions written in the styles that real students'
right code takes, and that an overly strict grader failed, each graded through the CLI.

1. a check the handout never asks for (correct_bias=False) is feedback, worth 0 by default;
2. one constant rounded through float32 is honest rounding, not a mistake;
3. a classifier written for bert-base (hidden size 768) fits;
4. older starters are judged by what they asked (11-747 froze BERT in the training script,
   Fall 2023 called the option 'freeze'), and a config attribute the course does not set reads
   as None;
5. one file's failure (an exit or a hang at import, an endless loop) costs only the cases that
   need that file or function.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradingkit import ROOT, check_honest, run_grader

REFERENCE = ROOT / "reference" / "bert"
FIXTURES = ROOT / "tests" / "fixtures" / "minbert_versions"
PREDICTIONS = "-output.txt"
OPTIMIZER_CASES = ("AdamW: the course's optimizer_test.npy", "AdamW: no weight decay, other betas and eps",
                   "AdamW: weight decay")


def _data_dir():
    from grader.assignment import load

    return load("minbert").data_dir


pytestmark = pytest.mark.skipif(not _data_dir().is_dir(), reason=f"course data directory {_data_dir()} missing")


def submission(tmp_path: Path, name: str, **edits: tuple[str, str] | str) -> Path:
    """The reference's three files, with `file=(old, new)` replacements or `file=new source`."""
    folder = tmp_path / name
    folder.mkdir()
    for file in ("bert.py", "classifier.py", "optimizer.py"):
        source = (REFERENCE / file).read_text()
        edit = edits.get(file.removesuffix(".py"))
        if isinstance(edit, tuple):
            assert source.count(edit[0]) == 1, f"{file}: {edit[0]!r}"
            source = source.replace(*edit)
        elif isinstance(edit, str):
            source = edit
        (folder / file).write_text(source)
    return folder


def code_cases(graded) -> list[dict]:
    return [t for t in graded.tests if not t["name"].endswith(PREDICTIONS)]


def lost(graded) -> dict[str, str]:
    return {t["name"]: t["output"] for t in code_cases(graded) if t["score"] < t["max_score"]}


# ---- 1. a check the handout never asks for ----------------------------------------------------

def test_correct_bias_ignored_is_feedback_worth_nothing(tmp_path, schema):
    ignored = submission(tmp_path, "ignores_correct_bias", optimizer=('if group["correct_bias"]:', "if True:"))
    graded = run_grader(ignored, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    case = graded.by_name["AdamW: correct_bias=False"]
    assert case["max_score"] == 0 and case["score"] == 0, graded.describe()
    assert "feedback only" in case["output"] and "never asks for correct_bias=False" in case["output"]
    assert lost(graded) == {}, graded.describe()


def test_the_manifest_can_give_that_check_points(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(ROOT / "assignments" / "minbert", root / "assignments" / "minbert")
    os.symlink(ROOT / "reference", root / "reference")
    manifest = root / "assignments" / "minbert" / "manifest.toml"
    text = manifest.read_text()
    assert "\n[points]\n" in text
    manifest.write_text(text.replace("\n[points]\n", '\n[points]\n"AdamW: correct_bias=False" = 2\n'))
    code = ("from grader import assignment; a = assignment.load('minbert'); "
            "print(next(c.points for c in a.cases if c.name == 'AdamW: correct_bias=False'), a.total_points)")
    for env, expected in (({}, 0.0), ({"DLGRADE_ROOT": str(root)}, 2.0)):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert float(done.stdout.split()[0]) == expected, done.stdout


# ---- 2. honest rounding -----------------------------------------------------------------------

def test_a_float32_constant_in_the_attention_loses_nothing(tmp_path, schema):
    scaled = "scores = scores / math.sqrt(self.attention_head_size)"
    rounded = "scores = scores / torch.sqrt(torch.tensor(self.attention_head_size))  # a float32 constant"
    folder = submission(tmp_path, "float32_constant", bert=(scaled, rounded))
    graded = run_grader(folder, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    assert lost(graded) == {}, graded.describe()


# ---- 3. a classifier written for bert-base ----------------------------------------------------

def test_a_classifier_sized_for_bert_base_fits(tmp_path, schema):
    head = ("torch.nn.Linear(self.bert.config.hidden_size, self.num_labels)", "torch.nn.Linear(768, self.num_labels)")
    graded = run_grader(submission(tmp_path, "hidden_768", classifier=head), tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    assert lost(graded) == {}, graded.describe()


# ---- 4. older starters and students' own settings ---------------------------------------------

def test_11747_classifier_that_freezes_in_its_training_script(tmp_path, schema):
    folder = tmp_path / "spring2021"
    shutil.copytree(FIXTURES / "11747-spring2021", folder)
    classifier = folder / "classifier.py"
    source = classifier.read_text()
    freezing = re.search(r"^(\s*)for param in self\.bert\.parameters\(\):\n\s*param\.requires_grad = .*\n",
                         source, re.MULTILINE)
    assert freezing, "the fixture's freezing loop moved"
    in_script = ("\n\tif args.option == 'pretrain':\n\t\tfor param in model.bert.parameters():\n"
                 "\t\t\tparam.requires_grad = False\n")
    source = source.replace(freezing.group(0), "")
    source = source.replace("\tmodel = BertSentClassifier(config)\n", "\tmodel = BertSentClassifier(config)\n" + in_script)
    assert "model.bert.parameters()" in source and "self.bert.parameters()" not in source
    classifier.write_text(source)
    graded = run_grader(folder, tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    assert lost(graded) == {}, graded.describe()
    freeze = graded.by_name["classifier: pretrain freezes BERT, trains the head"]
    assert "judged as the starter you wrote for asked: 11-747" in freeze["output"], freeze["output"]


def test_fall_2023_option_freeze_and_a_config_attribute_of_the_students_own(tmp_path, schema):
    source = (REFERENCE / "classifier.py").read_text()
    for old, new in (('if config.option not in ("pretrain", "finetune"):', 'if config.option not in ("freeze", "finetune"):'),
                     ('param.requires_grad = config.option == "finetune"',
                      'param.requires_grad = not (config.freeze_lm or config.option == "freeze")')):
        assert source.count(old) == 1, f"the reference's classifier moved: {old}"
        source = source.replace(old, new)
    graded = run_grader(submission(tmp_path, "fall2023_style", classifier=source), tmp_path / "r.json",
                        assignment="minbert")
    check_honest(graded, schema)
    assert lost(graded) == {}, graded.describe()
    freeze = graded.by_name["classifier: pretrain freezes BERT, trains the head"]
    assert "'freeze'" in freeze["output"] and "config.freeze_lm" in freeze["output"], freeze["output"]


# ---- 5. one file's failure spreads no further than its cases ----------------------------------

@pytest.mark.parametrize("ending", ["exit()", "import os\nos._exit(3)"])
def test_bert_ending_the_process_at_import_spares_the_optimizer(tmp_path, schema, ending):
    source = (REFERENCE / "bert.py").read_text() + f"\n{ending}\n"
    graded = run_grader(submission(tmp_path, "bert_exits", bert=source), tmp_path / "r.json", assignment="minbert")
    check_honest(graded, schema)
    for name in OPTIMIZER_CASES:
        assert graded.by_name[name]["score"] == graded.by_name[name]["max_score"], graded.describe()
    failed = lost(graded)
    assert failed and all(name.startswith(("attention", "self-attention", "add_norm", "BertLayer", "embed",
                                           "BertModel", "sanity", "classifier")) for name in failed), graded.describe()
    assert any("bert.py" in output for output in failed.values())


def test_an_endless_attention_leaves_time_for_the_other_files(tmp_path, schema):
    reference = (REFERENCE / "bert.py").read_text()
    start = re.search(r"^( +)def attention\(self, key, query, value, attention_mask\):\n", reference, re.MULTILINE)
    assert start, "the reference's attention moved"
    looping = reference.replace(start.group(0), start.group(0) + f"{start.group(1)}    while True:\n"
                                                                 f"{start.group(1)}        pass\n")
    begun = time.monotonic()
    graded = run_grader(submission(tmp_path, "endless", bert=looping), tmp_path / "r.json", assignment="minbert")
    elapsed = time.monotonic() - begun
    check_honest(graded, schema)
    for name in OPTIMIZER_CASES:
        assert graded.by_name[name]["score"] == graded.by_name[name]["max_score"], graded.describe()
    stopped = [t for t in code_cases(graded) if "is not run again" in t["output"]]
    timed_out = [t for t in code_cases(graded) if "timed out" in t["output"]]
    assert len(timed_out) == 1 and len(stopped) >= 8, graded.describe()
    assert "attention (bert.py line" in timed_out[0]["output"]
    # one timeout (a floor of 10 s plus the reference's time), not one per case
    assert elapsed < 150, f"grading took {elapsed:.0f} s"

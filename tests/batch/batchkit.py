"""Helpers of the batch-grading tests: a small class of linear-attention submissions."""
import shutil
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "grading"))   # gradingkit: the results.json schema

REFERENCE = ROOT / "reference" / "attention"
EXAMPLE = ROOT / "examples" / "linear_attention_submission"
STARTER = ROOT / "assignments" / "linear_attention" / "starter"


def make_class(folder: Path) -> Path:
    """Five students: right, the bundled example, the untouched starter, a syntax error, and one
    that ends the process at import."""
    folder.mkdir(parents=True)
    (folder / "ada").mkdir()
    shutil.copy(REFERENCE / "linear_attention.py", folder / "ada")
    shutil.copy(REFERENCE / "answers.toml", folder / "ada")
    shutil.copytree(EXAMPLE, folder / "ben")
    shutil.copytree(STARTER, folder / "cleo")
    (folder / "dan.py").write_text("def softmax_attention(Q, K, V:\n    pass\n")
    (folder / "fay.py").write_text("import os\nos._exit(3)\n")
    return folder

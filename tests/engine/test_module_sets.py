"""Staff file sets (reference, mutants) import each other by student-facing names, side by side."""
from __future__ import annotations

import sys

from grader.modules import load_module_set


def test_sets_are_independent_and_leave_no_names_behind(tmp_path):
    (tmp_path / "model.py").write_text("from support import WIDTH\n\ndef width():\n    return WIDTH\n")
    (tmp_path / "support.py").write_text("WIDTH = 4\n")
    files = {"model.py": tmp_path / "model.py", "support.py": tmp_path / "support.py"}
    sys.modules["support"] = "someone else's module"
    try:
        reference = load_module_set(files, "reference")
        mutant = load_module_set(files, "mutant", sources={"support.py": "WIDTH = 5\n"})
        assert reference["model"].width() == 4 and mutant["model"].width() == 5
        assert "model" not in sys.modules and sys.modules["support"] == "someone else's module"
        assert reference["model"].__file__ == "<reference model.py>"
    finally:
        del sys.modules["support"]

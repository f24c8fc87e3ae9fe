"""Fixtures of the batch-grading tests (helpers live in batchkit.py, next to this file)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # batchkit, whatever pytest's import mode

from batchkit import make_class  # noqa: E402


@pytest.fixture
def a_class(tmp_path) -> Path:
    return make_class(tmp_path / "class")

"""Fixtures of the grading tests (helpers live in gradingkit.py, next to this file)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # gradingkit, whatever pytest's import mode

from gradingkit import Validator  # noqa: E402


@pytest.fixture(scope="session")
def schema() -> Validator:
    return Validator()

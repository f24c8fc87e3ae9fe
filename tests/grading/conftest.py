"""Fixtures of the grading tests (helpers live in gradingkit.py)."""
import pytest

from gradingkit import Validator


@pytest.fixture(scope="session")
def schema() -> Validator:
    return Validator()

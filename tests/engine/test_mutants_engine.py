"""A mutant whose snippet no longer matches the reference is an error, not a silent no-op."""
import pytest

from grader.mutants import Mutant, MutantError, module_from_source


def test_patch_applies_once_and_module_runs():
    source = "def f(x):\n    return x + 1\n"
    mutant = Mutant("plus_two", "adds two", "m.py", "x + 1", "x + 2")
    assert module_from_source(mutant.apply(source), "m", "<m>").f(1) == 3


@pytest.mark.parametrize("source", ["def f(x):\n    return x\n", "a = x + 1\nb = x + 1\n"])
def test_missing_or_ambiguous_snippet_is_reported(source):
    with pytest.raises(MutantError, match="exactly once"):
        Mutant("m", "h", "m.py", "x + 1", "x + 2").apply(source)

"""Placeholders for the names of a stand-in package: importable, and loud when used.

An assignment may ship a stand-in for a package its course notebook imports but grading never
uses (torchvision's data sets for MAE; transformers' tokenizers and trainers for summarization):
the real package is not installed in the sandbox or costs memory Gradescope cannot spare, and
only the notebook's definitions are graded. A stand-in module sets

    __getattr__ = module_getattr(__name__)

so that `from torchvision import transforms` or `from transformers import AutoTokenizer`
succeeds, and calling the name raises an error that says why it is not there. The sandbox
worker preloads this module, so a stand-in imports it like any engine helper.
"""
from __future__ import annotations


class Placeholder:
    """Stands for `name` of `package`: taking attributes gives more placeholders; calling one
    raises; subclassing one (class Model(Placeholder)) fails at once with the same message."""

    def __init__(self, name: str, package: str):
        self._name = name
        self._package = package

    def _message(self) -> str:
        return (f"{self._name} is not available in the grading sandbox (a stand-in replaces {self._package} "
                "there): the grader runs your model code only, never data loading, tokenizers or training")

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Placeholder(f"{self._name}.{attribute}", self._package)

    def __call__(self, *args, **kwargs):
        raise RuntimeError(self._message())

    def __mro_entries__(self, bases):
        raise TypeError(self._message())

    def __repr__(self) -> str:
        return f"<placeholder for {self._name}>"


def module_getattr(module: str):
    """A module-level __getattr__ that gives a Placeholder for any name the stand-in lacks."""
    package = module.split(".")[0]

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{module}.{name}", package)
    return __getattr__

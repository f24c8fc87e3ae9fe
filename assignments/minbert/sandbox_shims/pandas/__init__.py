"""A stand-in for pandas inside the minbert grading sandbox. Not pandas.

The Fall 2023 starter's classifier.py runs `import pandas as pd` for its CSV data files (reading
`data/*.csv`, writing `*-output.csv`). Grading never runs that code: it builds BertSentClassifier
and scores the submitted prediction files itself. pandas is not in the grading image, so without
this stand-in a student who followed that starter would lose every classifier case to an import
the starter itself wrote. Importing works; using any of it says why it cannot.

It is only ever placed on the sandbox's import path when a minbert submission is imported.
"""
__version__ = "0.0+dlgrade.shim"


class _Unavailable:
    """Any pandas name: calling it, or anything on it, explains that pandas is not here."""

    def __init__(self, name: str):
        self._name = name

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(f"pandas.{self._name} is not available when grading: the grader builds your "
                           "classifier and scores your prediction files itself; keep pandas to data loading")

    __call__ = _refuse

    def __getattr__(self, attribute):
        return _Unavailable(f"{self._name}.{attribute}")


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Unavailable(name)

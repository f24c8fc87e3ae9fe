"""A tiny stand-in for scikit-learn inside the minbert grading sandbox. Not scikit-learn.

Students' classifier.py runs `from sklearn.metrics import classification_report, f1_score,
recall_score, accuracy_score` when it is imported, but grading never calls those functions
(it scores the submitted prediction files itself). Real scikit-learn, with scipy, would not fit
the grading image's size budget, so this package provides `sklearn.metrics` with small numpy
implementations of the common metrics, enough for the import to succeed and for the functions
to give the usual answers if a student's code does call them.

It is only ever placed on the sandbox's import path when a minbert submission is imported; it is
never installed, and nothing outside the sandbox imports it.
"""
__version__ = "0.0+dlgrade.shim"
__all__ = ["metrics"]

"""A stand-in for torchvision inside the MAE grading sandbox. Not torchvision.

The course's notebook imports `torchvision` and `torchvision.transforms` for CIFAR-10 loading,
which grading never runs: only the notebook's definitions are kept, its data and training cells
are not. Real torchvision is not installed (PyPI's build does not import beside the pinned
torch, and Gradescope's 768 MB has no room for it), so this package lets those imports succeed.
Any name taken from it is a placeholder that raises a clear error if it is ever used.

It is only ever placed on the sandbox's import path when an MAE submission is imported.
"""
from grader.standins import module_getattr

__version__ = "0.0+dlgrade.shim"
__getattr__ = module_getattr(__name__)

"""Feature maps the grader hands to the student's attention functions, identical in the child
and the parent (a support file of the sandbox: module `glue`, see manifest.toml).

A case passes one of these as an argument (`Glue("elu_plus_one")`, the `feature_map` of kernel
attention), so that a student's attention is graded on a feature map the grader trusts, not on
their own.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def elu_plus_one(X: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 (Katharopoulos et al., 2020): positive, so normalizers are nonzero."""
    return F.elu(X) + 1


def positive_random_features(X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """FAVOR+ positive features exp(Wx - |x|^2/2)/sqrt(m): an unbiased softmax-kernel estimate."""
    projection = X @ W.transpose(-1, -2)                       # [..., N, m]
    return torch.exp(projection - (X * X).sum(-1, keepdim=True) / 2) / math.sqrt(W.shape[0])

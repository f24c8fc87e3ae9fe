"""Helpers for minbert (support file: students do not edit it).

bert.py and base_bert.py do `from utils import *`, so every public name here (including
the imported torch, nn, F, math and typing names) reaches them.

The course's earlier utils.py also handed out os, sys, json, copy, tempfile, Path, partial, tqdm
and get_parameter_dtype this way; students' bert.py files written against it may use them.
"""
import copy
import json
import math
import os
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm


def get_parameter_dtype(parameter: nn.Module) -> torch.dtype:
    """The dtype of a module's first floating-point parameter (float32 when it has none)."""
    for tensor in parameter.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def get_extended_attention_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a padding mask into an additive attention mask.

    attention_mask: [bs, seq_len], 1 for real tokens and 0 for padding.
    Returns [bs, 1, 1, seq_len] in `dtype`: 0.0 for real tokens and -10000.0 for padding.
    Added to the attention scores [bs, heads, seq_len, seq_len], it broadcasts over heads and
    query positions, so no query attends to a padding key. A large finite number rather than
    -inf keeps the softmax finite in half precision.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be [batch_size, seq_len], got shape {tuple(attention_mask.shape)}")
    mask = attention_mask[:, None, None, :].to(dtype=dtype)
    return (1.0 - mask) * -10000.0

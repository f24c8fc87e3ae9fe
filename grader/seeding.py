"""One seed per case, on both sides of the trust boundary: the child seeds the student's call
and the parent seeds the reference's call with the same number, through this one function, so
that anything drawing from a global generator (random masking, dropout, randperm, numpy's or
Python's random) draws the same numbers in both."""
from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def case_seed(assignment: str, case_name: str, salt: str = "") -> int:
    """The seed of a case: its inputs and every generator its call may draw from. `salt` is
    staff-only in staff mode (see Assignment.staff_salt), so that staff inputs are not the public
    ones whose expected values students hold."""
    return zlib.crc32(f"{assignment}/{case_name}{'/' + salt if salt else ''}".encode())


def seed_everything(seed: int) -> None:
    """Seed every global generator a call may draw from: Python's, numpy's and torch's."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

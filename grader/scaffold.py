"""`dlgrade new NAME`: the skeleton of a new homework, which passes `dlgrade verify` as written.

It is a working example of every part docs/adding-a-homework.md describes: a manifest, one-line
cases (one of them draws from the global random generator, as random masking does), a reference
written like a textbook, a starter that raises NotImplementedError, a known mistake with its
hint, and golden values recorded for the public cases. Replace the example functions with the
homework's own.
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

from grader import paths

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,39}")


class ScaffoldError(ValueError):
    pass


MANIFEST = '''\
# {name}: written by `dlgrade new {name}`; every key is described in docs/adding-a-homework.md.
title = "{name}"
default_module = "{name}"          # the student module a Call targets unless it names another
files = ["{name}.py"]              # what students submit
notebook_module = "{name}"         # an .ipynb submission is graded as {name}.py

[limits]
case_timeout_s = 30                # a case's cap; its timeout follows the reference's own time
total_timeout_s = 540              # the whole run; Gradescope's default limit is 10 minutes
memory_mb = 400                    # the student's process, on top of torch

[reference]
"{name}.py" = "reference/{name}/{name}.py"
'''

CASES = '''\
"""Graded cases of {name}: one line per case (docs/adding-a-homework.md lists the kinds)."""
from grader.cases import Call, Randn, Value

ROWS = {{"x": Randn(4, 16)}}

CASES = [
    Value("standardize: each row to zero mean, unit variance", 4, call=Call("standardize", ("x",)), inputs=ROWS),
    Value("standardize, batch of matrices", 2, visibility="hidden", call=Call("standardize", ("x",)),
          inputs={{"x": Randn(3, 5, 16)}}),
    Value("standardize gradients", 2, call=Call("standardize", ("x",), grad=("x",)),
          inputs={{**ROWS, "dOut": Randn(4, 16)}}),
    # draws from torch's global generator: the student's call and the reference's share one seed
    Value("random_rows: keep 3 rows chosen at random", 2, call=Call("random_rows", ("x",), {{"keep": 3}}),
          inputs={{"x": Randn(8, 5)}}),
]
'''

MISTAKES = '''\
"""Known mistakes in {name}, as patches of the reference: each must lose points (`dlgrade verify`)."""
from grader.mutants import Mutant

FILE = "{name}.py"

MUTANTS = [
    Mutant(
        name="unbiased_std",
        hint="the standard deviation is the unbiased one (divides by D - 1); standardize with the population "
             "standard deviation (unbiased=False)",
        file=FILE,
        old="x.std(dim=-1, keepdim=True, unbiased=False)",
        new="x.std(dim=-1, keepdim=True)",
    ),
]

# right answers written differently: each must keep full marks
VARIANTS = []
'''

REFERENCE = '''\
"""Reference solution of {name}."""
import torch

EPS = 1e-5


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each row of x [..., D] to zero mean and unit (population) variance: [..., D]."""
    mean = x.mean(dim=-1, keepdim=True)                      # [..., 1]
    std = x.std(dim=-1, keepdim=True, unbiased=False)        # [..., 1]
    return (x - mean) / (std + EPS)


def random_rows(x: torch.Tensor, keep: int) -> torch.Tensor:
    """`keep` rows of x [N, D] chosen uniformly at random without replacement: [keep, D]."""
    order = torch.randperm(x.shape[0])                       # [N], from the global generator
    return x[order[:keep]]
'''

STARTER = '''\
"""{name}: fill in the functions below."""
import torch

EPS = 1e-5


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each row of x [..., D] to zero mean and unit (population) variance: [..., D]."""
    raise NotImplementedError


def random_rows(x: torch.Tensor, keep: int) -> torch.Tensor:
    """`keep` rows of x [N, D] chosen uniformly at random without replacement: [keep, D].
    Use torch.randperm (the global generator)."""
    raise NotImplementedError
'''


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name) or keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is not a usable homework name: lower case letters, digits and '_', "
                            "starting with a letter, 2 to 40 characters, not a Python keyword")


def skeleton(name: str) -> dict[str, str]:
    """Relative path (from the repository root) -> text, for every file of the skeleton."""
    check_name(name)
    folder = f"assignments/{name}"
    return {
        f"{folder}/manifest.toml": MANIFEST.format(name=name),
        f"{folder}/cases.py": CASES.format(name=name),
        f"{folder}/mistakes.py": MISTAKES.format(name=name),
        f"{folder}/starter/{name}.py": STARTER.format(name=name),
        f"reference/{name}/{name}.py": REFERENCE.format(name=name),
    }


def new_assignment(name: str, root: Path | None = None) -> list[Path]:
    """Write the skeleton under `root` (the repository root); `dlgrade new` then records its golden
    values. Refuses to overwrite anything: every file it would write must be new."""
    root = Path(root or paths.ROOT)
    files = {root / relative: text for relative, text in skeleton(name).items()}
    existing = [str(p.relative_to(root)) for p in files if p.exists()]
    if existing or (root / "assignments" / name).exists():
        raise ScaffoldError(f"assignment {name!r} exists already ({', '.join(existing) or f'assignments/{name}'}); "
                            "nothing was written")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)

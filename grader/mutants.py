"""Known mistakes as small source patches of the reference.

A mutant is the reference file with one snippet replaced. Keeping mutants as patches
(rather than copies) means they follow the reference when it changes, and a patch whose
`old` snippet no longer appears is reported as broken instead of silently testing nothing.
"""
from __future__ import annotations

import types
from dataclasses import dataclass


class MutantError(ValueError):
    """A mutant's patch does not apply to the reference source."""


@dataclass(frozen=True)
class Mutant:
    name: str          # short identifier, e.g. "missing_normalizer"
    hint: str          # what a student sees when their output matches this mutant
    file: str          # the student-facing file it patches, e.g. "linear_attention.py"
    old: str           # exact snippet of the reference, must occur exactly once
    new: str           # what replaces it

    def apply(self, source: str) -> str:
        count = source.count(self.old)
        if count != 1:
            raise MutantError(
                f"mutant {self.name!r}: snippet must occur exactly once in {self.file}, found {count}:\n{self.old}"
            )
        return source.replace(self.old, self.new)


def module_from_source(source: str, name: str, filename: str) -> types.ModuleType:
    """Execute trusted staff source (reference or mutant) as a fresh module.

    Only ever called on staff code; student code never runs in the grader's process.
    """
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module

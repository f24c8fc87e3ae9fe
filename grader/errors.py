"""Errors a staff member sees in one line (exit 2 from the command line), in a module light
enough for every command to import (no torch)."""


class AssignmentError(Exception):
    """An assignment folder (manifest, cases, mistakes) that cannot be loaded as written."""

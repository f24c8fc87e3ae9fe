"""dlgrade: a sandboxed autograder for deep-learning homework."""
# kept equal to pyproject.toml's version (a test checks); Gradescope runs from the source tree,
# where no installed distribution can be asked
__version__ = "0.1.0"

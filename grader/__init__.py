"""dlgrade: a sandboxed autograder for deep-learning homework."""

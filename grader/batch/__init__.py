"""Grading a whole class at once: sources of submissions, the worker pool, the gradebook."""

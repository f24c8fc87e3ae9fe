"""Staff reference implementations, one subpackage per homework piece."""

"""Benchmarks run as documented commands (not tests); see each module's docstring."""

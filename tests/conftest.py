"""Registers the differential fuzzer's hypothesis profiles ("fuzz-ci", "soak") before the
hypothesis plugin reads ``--hypothesis-profile``; see tests/fuzz/programs.py."""

from tests.fuzz import programs as _fuzz_programs  # noqa: F401

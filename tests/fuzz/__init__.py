"""Differential fuzzing of srcdiff: random programs (programs.py) against the finite-difference oracle."""

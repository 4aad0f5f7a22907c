"""Numba kernels: numpy and numba only, no I/O, no logging (see docs/ARCHITECTURE.md)."""

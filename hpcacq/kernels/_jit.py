"""Compilation options shared by every kernel.

``nogil`` lets Python threads run kernels in parallel; ``cache`` writes the machine code
to ``__pycache__`` (or ``NUMBA_CACHE_DIR``) so a second process does not recompile;
``error_model="numpy"`` makes a division by zero give inf/NaN instead of raising.
"""

JIT_OPTIONS = dict(nogil=True, cache=True, error_model="numpy")

"""Helpers shared by the tests (no test module imports another; they import from here).

- :mod:`helpers.naive_radon`, :mod:`helpers.naive_diameter`: slow, obviously correct
  references the Numba kernels are compared with.
- :mod:`helpers.fake_analysis`: a stand-in analysis with a known answer, to test the batch
  engine and the drivers alone (the ``fakes`` fixture of ``tests/conftest.py`` installs it).
- :mod:`helpers.jobs`: launching the driver (one process or MPI ranks) and reading a job's
  output back.
- :mod:`helpers.cli`: ``hpcacq`` run in the test's process (exit code and output); the
  ``corpus`` fixture of ``tests/conftest.py`` gives the synthetic files to run it on.
- :mod:`helpers.slurm_cluster`: a real local SLURM (slurmctld + slurmd) for the SLURM tests.

The tests folder is on ``sys.path`` under pytest (``tests/conftest.py`` lives there and
``tests`` is not a package), so tests import ``helpers.<module>``; scripts the tests launch
put the folder on their path themselves.
"""

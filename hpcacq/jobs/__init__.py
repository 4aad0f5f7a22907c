"""Orchestration: batch engine, strategies, drivers (local and MPI), SLURM rendering."""

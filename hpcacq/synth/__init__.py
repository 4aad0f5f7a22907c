"""Synthetic line scans with known answers."""

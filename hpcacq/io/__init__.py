"""Readers for line-scan files: TIFF (+ Olympus header, kymflow sidecar), .npy, HDF5."""

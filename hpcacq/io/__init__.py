"""Readers for line-scan files: TIFF (+ Olympus header, kymflow sidecar), .npy, HDF5."""

from .olympus import OlympusHeader, parse_olympus_header, read_olympus_header
from .readers import (
    SUPPORTED_SUFFIXES,
    RawAcquisition,
    as_channels,
    read_acquisition,
    write_tiff_with_header,
)
from .sidecar import RoiSpec, Sidecar, parse_sidecar, read_sidecar

__all__ = [
    "SUPPORTED_SUFFIXES",
    "OlympusHeader",
    "RawAcquisition",
    "RoiSpec",
    "Sidecar",
    "as_channels",
    "parse_olympus_header",
    "parse_sidecar",
    "read_acquisition",
    "read_olympus_header",
    "read_sidecar",
    "write_tiff_with_header",
]

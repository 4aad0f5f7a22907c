"""HDF5 results: one output file per job, one group per input file, a manifest table.

Layout and crash-safety design: docs/HDF5.md. Public API::

    from hpcacq.results import ResultsWriter, read_manifest, iter_results, read_job_attrs
    with ResultsWriter("out.h5", mode="new", job_attrs={...}) as writer:
        writer.write_file(file_record)
    for info, result in iter_results("out.h5"):
        ...
"""

from ..versions import software_versions
from .reader import iter_results, read_job_attrs, read_manifest
from .records import AnalysisRecord, FileRecord, file_fingerprint, group_name
from .writer import MODES, ResultsWriter

__all__ = ["ResultsWriter", "MODES", "AnalysisRecord", "FileRecord", "file_fingerprint", "group_name",
           "software_versions", "read_manifest", "iter_results", "read_job_attrs"]

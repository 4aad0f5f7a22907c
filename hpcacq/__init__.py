"""hpcacq: red-blood-cell velocity (Radon) and vessel diameter from two-photon line scans.

The public names load lazily (module ``__getattr__``), so ``import hpcacq`` stays fast and
pulls in neither Numba, h5py nor mpi4py; each loads when first used::

    import hpcacq
    img = hpcacq.AcqImage("Capillary1_0001.tif")
    analysis = img.analysis_set.create("radon_velocity", channel=0, roi_id=1)
    result = img.analysis_set.run_analysis(analysis.key)

acqstore's names are all here (``from hpcacq import AcqAnalysisBatch, RoiBatchMode, ...``),
so an acqstore script runs with its ``acqstore...`` imports replaced by ``hpcacq``; see
docs/ACQSTORE.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # what type checkers and editors see; at run time the names load lazily
    from .analyses.base import AnalysisResult
    from .analyses.diameter import DiameterOptions, vessel_diameter
    from .analyses.velocity import RadonOptions, radon_velocity
    from .analysis_set import BaseAnalysis, DiameterAnalysis, RadonVelocityAnalysis
    from .errors import AnalysisCancelled, AnalysisExclusionError
    from .io.readers import read_acquisition
    from .jobs.acq_list import AcqImageList
    from .jobs.batch import (
        AcqAnalysisBatch,
        AnalysisBatchKind,
        BatchAnalysisStrategy,
        BatchFileOutcome,
        BatchFileResult,
        DiameterBatchStrategy,
        RadonVelocityBatchStrategy,
        RoiBatchMode,
    )
    from .model import (
        AcqAnalysisSet,
        AcqImage,
        AcqImageAnalysisDataProvider,
        AnalysisKey,
        AnalysisRunContext,
        ImageBounds,
        Roi,
        RoiSet,
    )


# public name -> module that defines it
_LAZY = {
    "AcqImage": "hpcacq.model",
    "AcqAnalysisSet": "hpcacq.model",
    "AnalysisKey": "hpcacq.model",
    "AnalysisRunContext": "hpcacq.model",
    "Roi": "hpcacq.model",
    "RoiSet": "hpcacq.model",
    "ImageBounds": "hpcacq.model",
    "AcqImageAnalysisDataProvider": "hpcacq.model",
    "BaseAnalysis": "hpcacq.analysis_set",
    "RadonVelocityAnalysis": "hpcacq.analysis_set",
    "DiameterAnalysis": "hpcacq.analysis_set",
    "AnalysisCancelled": "hpcacq.errors",
    "AnalysisExclusionError": "hpcacq.errors",
    "AcqImageList": "hpcacq.jobs.acq_list",
    "AnalysisResult": "hpcacq.analyses.base",
    "radon_velocity": "hpcacq.analyses.velocity",
    "RadonOptions": "hpcacq.analyses.velocity",
    "vessel_diameter": "hpcacq.analyses.diameter",
    "DiameterOptions": "hpcacq.analyses.diameter",
    "read_acquisition": "hpcacq.io.readers",
    "BatchFileOutcome": "hpcacq.jobs.batch",
    "BatchFileResult": "hpcacq.jobs.batch",
    "RoiBatchMode": "hpcacq.jobs.batch",
    "AnalysisBatchKind": "hpcacq.jobs.batch",
    "RadonVelocityBatchStrategy": "hpcacq.jobs.batch",
    "DiameterBatchStrategy": "hpcacq.jobs.batch",
    "AcqAnalysisBatch": "hpcacq.jobs.batch",
    "BatchAnalysisStrategy": "hpcacq.jobs.batch",
}
_SUBMODULES = ("errors", "io", "model", "analyses", "jobs", "synth", "kernels")

__all__ = ["__version__", "errors", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'hpcacq' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))

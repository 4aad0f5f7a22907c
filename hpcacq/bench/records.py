"""FileRecords shaped like real velocity and diameter results, without running the analyses.

The writer benchmark (:mod:`hpcacq.bench.writer`) and the results tests need many records
quickly. The column names, units, flag bits and parameters are the analyses' own
(:mod:`hpcacq.analyses.velocity`, :mod:`hpcacq.analyses.diameter`), so what is written is
what a real job writes; only the numbers are random. ``tests/test_bench_records.py``
checks the records against real :func:`~hpcacq.analyses.velocity.radon_velocity` and
:func:`~hpcacq.analyses.diameter.vessel_diameter` results.
"""

from __future__ import annotations

import numpy as np

from ..analyses.base import AnalysisResult, ok_message
from ..analyses.diameter import FLAG_BITS as DIAMETER_FLAG_BITS
from ..analyses.diameter import UNITS as DIAMETER_UNITS
from ..analyses.diameter import DiameterOptions
from ..analyses.options import Units, stored_params
from ..analyses.velocity import FLAG_BITS, UNITS, RadonOptions, window_times_s
from ..results.records import AnalysisRecord, FileRecord

__all__ = ["velocity_record", "diameter_record", "VELOCITY_DTYPES", "DX_UM", "DT_S", "N_PIXELS"]

#: Column dtypes of a real velocity result (float64 unless named here).
VELOCITY_DTYPES = {"flags": np.int32, "background": np.int8}
#: Units of the records: a Capillary file's pixel size (µm) and line time (s), its width (pixels).
DX_UM, DT_S, N_PIXELS = 0.5, 0.001, 38


def _velocity_columns(n_rows: int, params: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random but consistent columns: velocity from the angle, NaN where flagged in the clean trace."""
    theta = rng.uniform(-80.0, 80.0, n_rows)
    velocity = (params["dx_um"] / params["dt_s"]) * np.tan(np.deg2rad(theta)) / 1000.0
    flags = np.zeros(n_rows, dtype=VELOCITY_DTYPES["flags"])
    for bit in FLAG_BITS.values():  # each window gets a random subset of the real bits
        flags |= (bit * (rng.random(n_rows) < 0.1)).astype(flags.dtype)
    columns = {"time_s": window_times_s(n_rows, window_lines=params["window_lines"], dt_s=params["dt_s"]),
               "theta_deg": theta, "velocity_mm_s": velocity,
               "velocity_clean_mm_s": np.where(flags == 0, velocity, np.nan),
               "separability": 1.0 + rng.exponential(2.0, n_rows),
               "flags": flags, "background": (flags & FLAG_BITS["static_background"] != 0)}
    return {name: np.asarray(columns[name], dtype=VELOCITY_DTYPES.get(name, np.float64)) for name in UNITS}


def velocity_record(index: int, n_rows: int = 7497, rng: np.random.Generator | None = None) -> FileRecord:
    """A FileRecord of one OK Radon velocity result of ``n_rows`` windows.

    Parameters
    ----------
    index : int
        Names the input (``/data/mouse 1/file_{index:06d}.tif``), seeds the numbers
        (unless ``rng`` is given) and sets the rank (``index % 4``).
    n_rows : int
        Windows (rows of every column); 7497 is a 30000-line Capillary file with the
        default 16-line windows.
    rng : numpy.random.Generator, optional
        Source of the numbers (default ``numpy.random.default_rng(index)``).

    Returns
    -------
    FileRecord
        One :class:`AnalysisRecord` (channel 0, ROI 1 spanning the 38-pixel-wide image)
        holding an :class:`AnalysisResult` with the analysis's columns, units, flag bits
        and parameters (``dx_um`` = 0.5 µm, ``dt_s`` = 1 ms, defaults otherwise).
    """
    rng = rng or np.random.default_rng(index)
    params = stored_params(RadonOptions(), Units(DX_UM, DT_S))
    columns = _velocity_columns(n_rows, params, rng)
    n_lines = (n_rows - 1) * (params["window_lines"] // 4) + params["window_lines"]
    summary = {"n_windows": float(n_rows),
               "median_velocity_mm_s": float(np.nanmedian(columns["velocity_clean_mm_s"]))}
    result = AnalysisResult(analysis="radon_velocity", params=dict(params), columns=columns, units=dict(UNITS),
                            flag_bits=dict(FLAG_BITS), summary=summary)
    record = AnalysisRecord(analysis="radon_velocity", channel=0, roi_id=1, roi_bounds=(0, n_lines, 0, N_PIXELS),
                            outcome="OK", message=ok_message(result), params=dict(params), result=result, elapsed_s=0.5)
    return FileRecord(file_path=f"/data/mouse 1/file_{index:06d}.tif", fingerprint={"size": 1000 + index,
                      "mtime_ns": 10**18 + index, "sha256": None}, records=[record], rank=index % 4,
                      host="node1", timings={"read_s": 0.1, "analyse_s": 0.5, "total_s": 0.6}, n_lines=n_lines)


def diameter_record(path: str, *, outcome: str = "OK", seed: int = 0, n_rows: int = 257) -> FileRecord:
    """A FileRecord of one vessel diameter analysis of ``path`` (channel 1, ROI 2), OK or not.

    Parameters
    ----------
    path : str
        The input file's path.
    outcome : str
        ``"OK"`` holds a result with the analysis's columns, units, flag bits and
        parameters (``dx_um`` = 0.4 µm, ``dt_s`` = 2 ms, defaults otherwise; halfmax, so
        ``fit_quality`` is NaN); any other outcome holds no result and the message
        ``"<outcome>: why"``.
    seed : int
        Seeds the numbers.
    n_rows : int
        Analysed lines (rows of every column).

    Returns
    -------
    FileRecord
        Rank 3 on host ``node7``, fingerprint sha256 ``"ab" * 32``, timings
        ``read_s`` 0.1 s and ``total_s`` 0.4 s; the summary's ``fraction_flagged`` is NaN
        (what an empty ROI gives), so NaN summaries are stored too.
    """
    rng = np.random.default_rng(seed)
    units = Units(dx_um=0.4, dt_s=0.002)
    params = stored_params(DiameterOptions(), units)
    left, right = rng.normal(10.0, 1.0, n_rows), rng.normal(30.0, 1.0, n_rows)
    flags = np.zeros(n_rows, dtype=np.int32)
    for bit in DIAMETER_FLAG_BITS.values():
        flags |= (bit * (rng.random(n_rows) < 0.05)).astype(flags.dtype)
    columns = {"time_s": np.arange(n_rows) * units.dt_s, "left_px": left, "right_px": right,
               "diameter_px": right - left, "left_um": left * units.dx_um, "right_um": right * units.dx_um,
               "diameter_um": (right - left) * units.dx_um, "fit_quality": np.full(n_rows, np.nan), "flags": flags}
    columns = {name: columns[name] for name in DIAMETER_UNITS}
    result = AnalysisResult("diameter", dict(params), columns, dict(DIAMETER_UNITS),
                            flag_bits=dict(DIAMETER_FLAG_BITS),
                            summary={"median_diameter_um": float(np.median(columns["diameter_um"])),
                                     "fraction_flagged": float("nan")})
    ok = outcome == "OK"
    record = AnalysisRecord("diameter", 1, 2, (0, n_rows, 3, 60), outcome,
                            ok_message(result) if ok else f"{outcome}: why", dict(params), result if ok else None,
                            0.25)
    return FileRecord(path, {"size": 12, "mtime_ns": 34, "sha256": "ab" * 32}, [record], rank=3, host="node7",
                      timings={"read_s": 0.1, "total_s": 0.4}, n_lines=n_rows)

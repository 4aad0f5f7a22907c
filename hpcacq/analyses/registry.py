"""The registered analyses: one :class:`AnalysisEntry` line each, one :class:`AnalysisSpec` when used.

The analysis modules (and through them Numba) are imported only when a spec is first
looked up, so listing the names (``list(ANALYSES)``) and importing this module stay cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError

if TYPE_CHECKING:  # the registry imports neither numpy nor numba: listing analyses stays cheap
    from .base import AnalysisResult

__all__ = ["AnalysisEntry", "AnalysisSpec", "REGISTRY", "ANALYSES", "ANALYSIS_NAMES", "ALIASES", "HEADLINE",
           "resolve", "label_of", "get_spec", "build_options", "working_bytes_per_pixel"]

ROI_GEOMETRY = "primary_kymograph"  # acqstore's name of the group


@dataclass(frozen=True)
class AnalysisEntry:
    """What the program knows of one analysis without importing it (no Numba): one registry line.

    Attributes
    ----------
    name : str
        Registered name, stored in results (``"radon_velocity"``).
    module : str
        Module holding the run body, the public keyword function and ``UNITS``, ``FLAG_BITS``
        and ``WARMUP`` (the option sets whose kernels ``hpcacq compile`` warms).
    options : str
        ``"module:Class"`` of the frozen options dataclass, in a module that imports
        neither NumPy nor Numba (the CLI builds its options from the fields' metadata).
    func : str
        Name of the public keyword function ``func(image, *, dx_um, dt_s, ..., row_offset,
        threads, cancel, progress) -> AnalysisResult`` in ``module``.
    run : str
        Name of the run body ``run(block, options, units, *, row_offset, threads, cancel,
        progress) -> AnalysisResult`` in ``module`` (``func`` builds options and units
        and calls it).
    label : str
        Short name on the command line and in plots (``"velocity"``).
    headline : str
        The column summaries and plots show (``"velocity_clean_mm_s"``).
    headline_unit : str
        Unit of ``headline``.
    exclusive_group : str or None
        Analyses of one group exclude each other on one (channel, ROI); None: coexists.
    warmup_block : str
        Synthetic block the warm-up runs on: ``"streaks"`` (flow) or ``"vessel"``.
    description : str
        What it measures, for ``--help``.
    working_bytes : float
        Bytes per pixel of the analysed channel the analysis holds besides the file's own
        pixels (the memory check before a file is read).
    acqstore : tuple of str or None
        ``(module, schema, translate)`` of acqstore's parameter vocabulary, if it has one
        (:mod:`hpcacq.analyses.acqstore_params`).
    raw_column : str or None
        The column before cleaning, drawn in grey under ``headline`` (``"velocity_mm_s"``);
        None: ``headline`` is drawn per row with its median over blocks of rows.
    signed : bool
        The headline takes either sign (a direction); plots draw a zero line.
    row_word : str
        What one row of the table is, in plot titles (``"windows"``, ``"lines"``).
    edge_columns : tuple of str or None
        ``(left, right)`` columns of edges in pixels from the ROI's first column, drawn
        over the kymograph (``("left_px", "right_px")``); None: nothing drawn there.
    """

    name: str
    module: str
    options: str
    func: str
    label: str
    headline: str
    headline_unit: str
    exclusive_group: str | None = ROI_GEOMETRY
    run: str = "run_block"
    warmup_block: str = "streaks"
    description: str = ""
    working_bytes: float = 18.0
    acqstore: tuple[str, str, str] | None = None
    raw_column: str | None = None
    signed: bool = False
    row_word: str = "lines"
    edge_columns: tuple[str, str] | None = None

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every name the user may type: the label and the registered name."""
        return tuple(dict.fromkeys((self.label, self.name)))

    def options_cls(self) -> type:
        """The options dataclass (imports its light module only: no NumPy, no Numba)."""
        module, _, name = self.options.partition(":")
        return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class AnalysisSpec:
    """How to validate and run one analysis, and everything else the program asks about it.

    Attributes
    ----------
    name : str
        Registered name (a key of :data:`REGISTRY`).
    options_cls : type
        Frozen options dataclass (``RadonOptions``, ``DiameterOptions``) holding every
        scientific option, without the units of a file.
    run : callable
        ``run(image2d, options, units, *, row_offset, threads, cancel, progress) -> AnalysisResult``
        where ``image2d`` is the ROI block (n_lines, n_pixels), ``options`` an
        ``options_cls`` (used as it is), ``units`` the file's
        :class:`~hpcacq.analyses.options.Units` and ``row_offset`` the block's r0.
    exclusive_group : str or None
        Analyses of one group exclude each other on the same (channel, ROI):
        velocity wants an ROI along a vessel, diameter one across it.
    units : mapping of str -> str
        The output columns and their units.
    flag_bits : mapping of str -> int
        Meaning of each bit of the ``flags`` column (empty: no flags).
    warmup : tuple of dict
        Option sets that together compile every kernel signature a run uses.
    entry : AnalysisEntry or None
        The registry line (label, headline, CLI options); None for a stand-in.
    """

    name: str
    options_cls: type
    run: Callable[..., AnalysisResult]
    exclusive_group: str | None = ROI_GEOMETRY
    units: Mapping[str, str] = dataclasses.field(default_factory=dict)
    flag_bits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    warmup: tuple[dict, ...] = ()
    entry: AnalysisEntry | None = None


#: The registered analyses, one line each (adding an analysis: its module and one line here).
REGISTRY: dict[str, AnalysisEntry] = {e.name: e for e in (
    AnalysisEntry("radon_velocity", "hpcacq.analyses.velocity", "hpcacq.analyses.velocity_options:RadonOptions",
                  "radon_velocity", "velocity", "velocity_clean_mm_s", "mm/s",
                  description="Radon streak angle (mm/s)", working_bytes=22.0,
                  raw_column="velocity_mm_s", signed=True, row_word="windows",
                  acqstore=("hpcacq.analyses.acqstore_radon", "RADON_SCHEMA", "radon_params_from_acqstore")),
    AnalysisEntry("diameter", "hpcacq.analyses.diameter", "hpcacq.analyses.diameter_options:DiameterOptions",
                  "vessel_diameter", "diameter", "diameter_um", "um", warmup_block="vessel",
                  description="vessel width (um)", working_bytes=12.0, edge_columns=("left_px", "right_px"),
                  acqstore=("hpcacq.analyses.acqstore_diameter", "ACQSTORE_DIAMETER_SCHEMA",
                            "diameter_params_from_acqstore")),
    AnalysisEntry("sum_intensity", "hpcacq.analyses.sum_intensity", "hpcacq.analyses.options:NoOptions",
                  "sum_intensity", "sum_intensity", "mean_intensity", "counts/px", exclusive_group=None, warmup_block="vessel",
                  description="summed intensity of each line (counts)", working_bytes=10.0),
    AnalysisEntry("line_correlation_velocity", "hpcacq.analyses.line_velocity",
                  "hpcacq.analyses.line_velocity_options:LineVelocityOptions", "line_velocity", "line_velocity",
                  "velocity_clean_mm_s", "mm/s", exclusive_group=None, raw_column="velocity_mm_s", signed=True,
                  row_word="windows",
                  description="line cross-correlation speed for narrow (7-12 px) lines (mm/s)", working_bytes=20.0),
)}
ANALYSIS_NAMES: tuple[str, ...] = tuple(REGISTRY)
#: Every name a user may type (label or registered name) -> registered name.
ALIASES: dict[str, str] = {alias: e.name for e in REGISTRY.values() for alias in e.aliases}
#: Registered name -> the column summaries and plots show.
HEADLINE: dict[str, str] = {e.name: e.headline for e in REGISTRY.values()}


def resolve(name: str) -> str:
    """The registered name of ``name`` (a label such as ``"velocity"`` or a registered name).

    Raises
    ------
    ParameterError
        Unknown name; the message lists the valid names.
    """
    if isinstance(name, str) and name in ALIASES:
        return ALIASES[name]
    raise ParameterError(f"unknown analysis {name!r}; valid names are: {', '.join(ALIASES)}")


def label_of(name: str) -> str:
    """The short command-line name of registered analysis ``name`` (``"velocity"``)."""
    entry = REGISTRY.get(name)
    return entry.label if entry is not None else name


def working_bytes_per_pixel(name: str | None) -> float:
    """Extra bytes per pixel of one channel analysis ``name`` holds beyond the file's pixels.

    From its registry line (``AnalysisEntry.working_bytes``: a float64 copy of the ROI
    (8), its finiteness mask (1) and the per-line work arrays; measured, see
    docs/ARCHITECTURE.md, "Memory bound"); 0 for None, 18 for an unregistered name.
    """
    if name is None:
        return 0.0
    entry = REGISTRY.get(str(name))
    return entry.working_bytes if entry is not None else 18.0


class _LazySpecs(Mapping[str, AnalysisSpec]):
    """Mapping of analysis specs that imports an analysis module on first lookup."""

    def __init__(self, sources: dict[str, AnalysisEntry]):
        self._sources = sources
        self._cache: dict[str, AnalysisSpec] = {}

    def __getitem__(self, name: str) -> AnalysisSpec:
        if name not in self._cache:
            entry = self._sources[name]
            module = importlib.import_module(entry.module)
            self._cache[name] = AnalysisSpec(
                name=name,
                options_cls=entry.options_cls(),
                run=getattr(module, entry.run),
                exclusive_group=entry.exclusive_group,
                units=dict(getattr(module, "UNITS", {})),
                flag_bits=dict(getattr(module, "FLAG_BITS", {})),
                warmup=tuple(getattr(module, "WARMUP", ())),
                entry=entry,
            )
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __repr__(self) -> str:
        return f"ANALYSES({', '.join(self._sources)})"


ANALYSES: Mapping[str, AnalysisSpec] = _LazySpecs(REGISTRY)


def get_spec(name: str) -> AnalysisSpec:
    """The spec of analysis ``name``; ParameterError listing the valid names if unknown."""
    if not isinstance(name, str) or name not in ANALYSES:
        raise ParameterError(f"unknown analysis {name!r}; valid names are: {', '.join(ANALYSES)}")
    return ANALYSES[name]


def build_options(name: str, detection_params: Any = None) -> Any:
    """Validate ``detection_params`` (hpcacq's names) for analysis ``name`` and build its frozen options.

    Parameters
    ----------
    name : str
        Registered analysis name.
    detection_params : dict, options object or None
        Scientific options (e.g. ``{"window_lines": 32}``); unknown names and units
        (``dx_um``, ``dt_s``: they belong to a file) are rejected. An object of the
        analysis' options class is returned as it is (already validated).

    Raises
    ------
    ParameterError
        Unknown analysis, unknown parameter name, a unit, or an invalid value.
    """
    from .options import options_from_mapping

    spec = get_spec(name)
    if isinstance(detection_params, spec.options_cls):
        return detection_params
    if detection_params is not None and not isinstance(detection_params, Mapping):
        raise ParameterError(
            f"detection_params for {name!r} must be a dict (or a {spec.options_cls.__name__}), "
            f"got {type(detection_params).__name__}"
        )
    try:
        return options_from_mapping(spec.options_cls, dict(detection_params or {}))
    except ParameterError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"invalid parameters for {name!r}: {exc}") from None

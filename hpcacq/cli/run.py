"""``hpcacq run``: analyse many files (one process, or MPI ranks) into one HDF5 file."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

import click

from ..analyses.options import cli_fields, cli_name, help_of
from ..analyses.registry import ALIASES, REGISTRY, label_of
from ._common import UsageFailure, is_rank0, library_errors, load_toml, parse_value, read_options

__all__ = ["run", "parse_time_limit", "build_config"]

ANALYSIS_NAMES = dict(ALIASES)  # every name --analysis accepts -> registered name


def _cli_fields() -> dict[str, tuple[Any, list[str]]]:
    """Option field name -> (its field, the analyses that have it), over the registry (no NumPy imported)."""
    out: dict[str, tuple[Any, list[str]]] = {}
    for entry in REGISTRY.values():
        for f in cli_fields(entry.options_cls()):
            out.setdefault(f.name, (f, []))[1].append(entry.name)
    return out


_CLI_FIELDS = _cli_fields()
_ANALYSIS_OF_OPTION = {name: names for name, (_, names) in _CLI_FIELDS.items()}
#: Defaults `run --help` shows: the options classes' own.
HELP_DEFAULTS = {name: f.default for name, (f, _) in _CLI_FIELDS.items()}


def _click_option(f: Any, analyses: list[str]) -> Callable:
    """The ``hpcacq run`` option of an options field, from its metadata (help, choices, low, metavar)."""
    meta = f.metadata
    if meta.get("choices"):
        kind: Any = click.Choice(list(meta["choices"]))
    elif isinstance(f.default, int) and not isinstance(f.default, bool):
        kind = click.IntRange(min=meta.get("low"))
    else:
        kind = type(f.default) if f.default is not None else str
    own = [next(g for g in cli_fields(REGISTRY[name].options_cls()) if g.name == f.name) for name in analyses]
    if all(help_of(g) == help_of(f) and g.default == f.default for g in own):
        text = f"{'/'.join(label_of(name) for name in analyses)}: {help_of(f)[:1].lower()}{help_of(f)[1:]} " \
               f"[default: {f.default}]"
    else:  # options of one name in several analyses, each with its own meaning or default
        text = " ".join(f"{label_of(name)}: {help_of(g)[:1].lower()}{help_of(g)[1:]} [default: {g.default}]"
                        for name, g in zip(analyses, own, strict=True))
    lows = [g.metadata.get("low") for g in own]
    if kind.__class__ is click.IntRange:  # the lowest bound of all; each options class checks its own
        kind = click.IntRange(min=None if None in lows else min(lows))
    return click.option(cli_name(f.name), f.name, type=kind, default=None, metavar=meta.get("metavar"), help=text)


def _analysis_options(command: Callable) -> Callable:
    """Decorate ``command`` with one option per options field marked ``cli=True`` (registry order)."""
    for f, analyses in reversed(list(_CLI_FIELDS.values())):
        command = _click_option(f, analyses)(command)
    return command
_HMS = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})$")


def parse_time_limit(text: Any) -> float | None:
    """Seconds from ``3600``, ``90.5``, ``HH:MM:SS`` or ``D-HH:MM:SS`` (None stays None)."""
    if text is None:
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    text = str(text).strip()
    match = _HMS.match(text)
    if match:
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    try:
        return float(text)
    except ValueError:
        raise UsageFailure(f"--time-limit {text!r} must be seconds (3600) or HH:MM:SS (01:00:00)") from None


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageFailure(f"--param {item!r} must look like NAME=VALUE (e.g. --param angle_step_deg=0.25)")
        params[name.strip().replace("-", "_")] = parse_value(value.strip())
    return params


def _merge_config(ctx: click.Context, values: dict[str, Any]) -> dict[str, Any]:
    """Fill options left at their defaults from the TOML ``--config`` file (CLI wins)."""
    if not values.get("config"):
        return values
    table = {str(k).replace("-", "_"): v for k, v in load_toml(values["config"]).items()}
    by_name = {p.name: p for p in ctx.command.params if p.name not in ("config", "param")}
    valid = sorted(set(by_name) | {"params"})
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise UsageFailure(f"{values['config']}: unknown key(s) {unknown}; valid keys are {valid}")
    params = table.pop("params", {}) or {}
    if not isinstance(params, dict):
        raise UsageFailure(f"{values['config']}: key 'params' must be a table ([params] with NAME = VALUE lines), "
                           f"not {params!r}")
    params = dict(params)
    params.update(values["param_dict"])
    values["param_dict"] = params
    for name, value in table.items():
        source = ctx.get_parameter_source(name)
        given = source not in (click.core.ParameterSource.DEFAULT, None) and not (name == "inputs" and not values[name])
        option = by_name[name]  # checked even when the command line wins: a wrong type is always an error
        if name == "inputs":
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise UsageFailure(f"{values['config']}: key 'inputs' must be a path or a list of paths, not {value!r}")
            value = tuple(value)
        if isinstance(option.type, click.types.IntParamType) and isinstance(value, float):
            raise UsageFailure(f"{values['config']}: key {name!r}: {value!r} must be a whole number")
        try:
            value = option.type_cast_value(ctx, value)
        except (click.BadParameter, TypeError, ValueError) as exc:  # a value of the wrong type
            text = exc.format_message() if isinstance(exc, click.BadParameter) else f"{value!r} has the wrong type"
            raise UsageFailure(f"{values['config']}: key {name!r}: {text}") from None
        if not given:  # given on the command line: the CLI wins
            values[name] = value
    return values


def _analysis_params(values: dict[str, Any], analysis: str) -> dict[str, Any]:
    params = dict(values["param_dict"])
    for name, wanted in _ANALYSIS_OF_OPTION.items():
        if values.get(name) is None:
            continue
        if analysis not in wanted:
            raise UsageFailure(f"{cli_name(name)} applies to --analysis {'/'.join(map(label_of, wanted))}, "
                               f"not {label_of(analysis)}; remove it or use --param")
        params[name] = values[name]
    return params


def _param_help(values: dict[str, Any]) -> None:
    """``--param help``: print the analysis' parameters (as ``hpcacq params``) and exit 0."""
    if "help" not in [item.strip().lower() for item in values["param"]]:
        return
    from .params import format_table, parameter_table

    with library_errors():
        click.echo(format_table(values["analysis"], parameter_table(values["analysis"])))
    raise click.exceptions.Exit(0)


def _check_cli_options(values: dict[str, Any]) -> None:
    """Combinations of options, checked in the CLI's words before the library sees them."""
    if values["roi"] == "existing" and values["roi_id"] is None:
        raise UsageFailure("--roi existing needs --roi-id N, the id of an ROI in each file's kymflow sidecar "
                           "(`hpcacq info FILE` lists them); or use --roi new for the whole image")
    if values["roi"] == "new" and values["roi_id"] is not None:
        raise UsageFailure(f"--roi-id {values['roi_id']} is only used with --roi existing; add --roi existing, "
                           "or drop --roi-id to analyse the whole image")
    if values["resume"] and values["overwrite"]:
        raise UsageFailure("--resume and --overwrite exclude each other: --resume continues the existing output, "
                           "--overwrite replaces it; choose one")


def build_config(ctx: click.Context, values: dict[str, Any], *, progress: bool):
    """The :class:`hpcacq.jobs.config.JobConfig` of a ``run`` invocation (CLI + TOML)."""
    _param_help(values)
    values["param_dict"] = _parse_params(values.pop("param"))
    values = _merge_config(ctx, values)
    if not values["output"]:
        raise UsageFailure("missing output: give -o OUT.h5 (or `output` in the --config file)")
    _check_cli_options(values)
    from ..jobs.config import JobConfig
    from ..jobs.inputs import InputList

    analysis = ANALYSIS_NAMES[values["analysis"]]
    with library_errors():
        inputs = InputList.from_specs(values["inputs"], recursive=values["recursive"])  # on disk
        if is_rank0():
            for note in inputs.notes:  # results files and .parts folders met in the inputs
                click.echo(note, err=True)
        return JobConfig(inputs=inputs, output=values["output"], analysis=analysis,
                         channel=values["channel"], roi_mode=values["roi"], roi_id=values["roi_id"],
                         params=_analysis_params(values, analysis), dx_um=values["dx_um"], dt_s=values["dt_s"],
                         threads=values["threads"], resume=values["resume"], overwrite=values["overwrite"],
                         time_limit_s=parse_time_limit(values["time_limit"]), stop_file=values["stop_file"],
                         progress=progress, transpose=values["transpose"], axes=values["axes"],
                         max_memory=values["max_memory"])


SHOW_PROBLEMS = 200  # files not OK listed at the end (all of them are in the HDF5 manifest)
STATUS_REDRAW_S = 0.25  # the terminal's status area is redrawn this often


class _Display:
    """Log lines, the live status area on a terminal (progress lines otherwise), the first failed files."""

    def __init__(self, n_files: int, tty: bool, output: str):
        from .progress_view import StatusArea

        self.n_files, self.tty, self.output, self.done = n_files, tty, output, 0
        self.problems: list[tuple[str, str, str]] = []
        self.n_problems = 0
        self.rank0 = is_rank0()
        self.area = StatusArea(click.get_text_stream("stderr")) if tty and self.rank0 else None

    def log(self, line: str) -> None:
        if not self.rank0:
            return
        if self.area is not None:
            self.area.print_above(line)
        else:
            click.echo(line)

    def on_progress(self, snapshot: Any) -> None:
        """Rank 0, from the driver: redraw the status area, or log one progress line."""
        if self.area is not None:
            self.area.draw(snapshot)
        elif self.rank0:
            click.echo(snapshot.line())

    def on_file(self, record: Any) -> None:
        self.done += 1
        for analysis in record.records:
            if analysis.outcome not in ("OK", "CANCELLED"):
                self.n_problems += 1
                if len(self.problems) < SHOW_PROBLEMS:
                    self.problems.append((record.file_path, analysis.outcome, analysis.message))

    def finish(self, summary: Any) -> None:
        if not self.rank0:
            return
        if self.area is not None:
            self.area.clear()
        for line in summary.lines():
            click.echo(line)
        rate = summary.n_lines / summary.elapsed_s if summary.elapsed_s > 0 else float("nan")
        click.echo(f"{rate:,.0f} lines/s, {summary.elapsed_s:.1f} s elapsed")
        if self.problems:
            click.echo(f"{self.n_problems} file(s) not OK:")
            for path, outcome, message in self.problems:
                click.echo(f"  {outcome} {path!r}: {message}")
            if self.n_problems > len(self.problems):
                click.echo(f"  ... and {self.n_problems - len(self.problems)} more: hpcacq summary {self.output}")


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HDF5 results file to write.")
@click.option("--analysis", type=click.Choice(sorted(ANALYSIS_NAMES)), default="velocity", show_default=True,
              help="; ".join(f"{e.label} = {e.description}" for e in REGISTRY.values()) + ".")
@click.option("--channel", type=click.IntRange(min=0), default=0, show_default=True, help="Channel, 0-based.")
@click.option("--roi", type=click.Choice(["new", "existing"]), default="new", show_default=True,
              help="new: the whole image (stored as ROI 0); existing: the ROI --roi-id of each file's kymflow sidecar.")
@click.option("--roi-id", type=click.IntRange(min=0), default=None,
              help="ROI id (integer >= 0) for --roi existing; `hpcacq info FILE` lists a file's ROIs.")
@_analysis_options
@click.option("--param", multiple=True, metavar="NAME=VALUE",
              help="Any other analysis parameter (repeatable), e.g. --param score=path_normalized. "
                   "--param help (or `hpcacq params ANALYSIS`) lists them with default, unit and meaning.")
@click.option("--dx-um", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Micrometres per pixel (> 0), overriding the file headers. [default: from the file]")
@click.option("--dt-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds per line (> 0), overriding the file headers. [default: from the file]")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads inside one file's analysis; a rank runs (its cores / N) files at once. "
                   "Default: 1 per file when there are at least as many files as cores.")
@click.option("--resume", is_flag=True, default=False, help="Continue an existing output; skip files already OK.")
@click.option("--overwrite", is_flag=True, default=False, help="Replace an existing output.")
@click.option("--time-limit", default=None, metavar="SECONDS|HH:MM:SS", help="Stop cleanly (exit 3) after this time.")
@click.option("--stop-file", type=click.Path(), default=None, help="Stop cleanly (exit 3) when this file appears.")
@click.option("--recursive", is_flag=True, default=False, help="Search folders' subfolders too.")
@read_options
@click.option("--max-memory", default=None, metavar="SIZE",
              help="Per-rank memory bound (4G, 512MiB, 25%); a file needing more is FAILED before it is read. "
                   "Default: $HPCACQ_MAX_MEMORY, else half the node's memory / ranks on the node.")
@click.option("--progress-every", type=click.FloatRange(min=0), default=30.0, show_default=True, metavar="SECONDS",
              help="Off a terminal (batch/SLURM logs): a progress line (files done/total, files/s, lines/s, "
                   "time left, files in progress) every SECONDS; 0 = none. On a terminal a live status "
                   "area shows the same.")
@click.option("--config", type=click.Path(dir_okay=False), default=None,
              help="TOML job file with any of these options (command line wins).")
@click.pass_context
def run(ctx: click.Context, **values: Any) -> int:
    """Analyse INPUTS (files, folders, 'globs*', @list.txt) into one HDF5 file.

    Runs on one process with threads, or on MPI ranks when started by mpiexec/srun
    (only rank 0 prints and writes). Ctrl-C, SIGTERM, SIGUSR1, --time-limit and
    --stop-file stop cleanly: finished files are kept and --resume completes the job.

    \b
    Example:
      hpcacq run data/ -o out.h5 --analysis velocity --window-lines 16
      hpcacq run @files.txt -o d.h5 --analysis diameter --method fit --time-limit 01:50:00
      mpiexec -n 4 python -m mpi4py -m hpcacq run data/ -o out.h5
    """
    tty = sys.stderr.isatty()
    config = build_config(ctx, values, progress=not tty)
    from ..jobs.driver import run_job
    from ..jobs.late_signals import hold_late_signals

    hold_late_signals()  # a signal after the job ends keeps the job's exit code (not -15)

    display = _Display(len(config.inputs), tty, config.output)
    every = STATUS_REDRAW_S if tty else values["progress_every"]
    with library_errors():
        try:
            summary = run_job(config, log=display.log, on_file_result=display.on_file,
                              on_progress=display.on_progress if every else None, progress_every_s=every or 1.0)
        except BaseException:
            if display.area is not None:
                display.area.clear()  # the error message goes where the status area was
            raise
        finally:
            config.inputs.close()  # the on-disk input list
    display.finish(summary)
    return summary.exit_code

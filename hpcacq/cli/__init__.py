"""The ``hpcacq`` command line (Click). The library knows nothing of Click.

Commands are registered in one place, :data:`COMMANDS` (name -> ``"module:function"``),
and imported only when used or listed; command modules import numpy, numba, h5py and
mpi4py inside the command body, so ``hpcacq --help`` answers fast.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

__all__ = ["cli", "main", "COMMANDS", "EXIT_CODES"]

#: name -> "module:attribute" of a click.Command; add new commands here.
COMMANDS = {
    "run": "hpcacq.cli.run:run",
    "info": "hpcacq.cli.views:info",
    "summary": "hpcacq.cli.views:summary",
    "export": "hpcacq.cli.export:export",
    "synth": "hpcacq.cli.tools:synth",
    "slurm": "hpcacq.cli.tools:slurm",
    "bench": "hpcacq.cli.bench:bench",
    "compile": "hpcacq.cli.compile:compile_kernels",
    "merge": "hpcacq.cli.merge:merge",
    "validate": "hpcacq.cli.validate:validate",
    "plot": "hpcacq.cli.plot:plot",
    "repair": "hpcacq.cli.repair:repair",
    "params": "hpcacq.cli.params:params",
}

EXIT_CODES = {
    0: "every file OK",
    1: "some files FAILED or SKIPPED",
    2: "usage error (bad option or parameter, missing input, output exists)",
    3: "cancelled (signal, stop file, time limit): rerun with --resume",
    4: "internal error (a bug: please report it with the traceback)",
    5: "the output could not be written (disk full, I/O error): stored results are kept; rerun with --resume",
}

EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("hpcacq")
    except PackageNotFoundError:
        text = "unknown (not installed: pip install -e .)"
    click.echo(f"hpcacq {text}")
    ctx.exit(0)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
def cli() -> None:
    """Blood-cell velocity and vessel diameter from two-photon line scans.

    \b
    Example:
      hpcacq synth data --n-files 4 --kind velocity
      hpcacq run data -o out.h5 --analysis velocity
      hpcacq summary out.h5
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run :func:`cli` and exit with the documented codes."""
    try:
        code = cli.main(args=argv, prog_name="hpcacq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("hpcacq: interrupted", err=True)
        code = 3
    except Exception:  # noqa: BLE001 - a bug: show it, exit 4
        traceback.print_exc()
        click.echo("hpcacq: internal error (exit code 4); please report the traceback above", err=True)
        code = 4
    code = code if isinstance(code, int) else 0
    if code in (1, 2, 3, 5):
        _finalize_mpi_then_exit(code)
    sys.exit(code)


def _finalize_mpi_then_exit(code: int) -> None:
    """Under ``python -m mpi4py`` a non-zero exit calls MPI_Abort (noisy, leaves shared
    memory behind). Codes 1-3 and 5 are the same on every rank (from the JobSummary or the same
    usage check), so finalize MPI collectively and exit with the code instead."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return
    sys.stdout.flush()
    sys.stderr.flush()
    mpi.Finalize()
    os._exit(code)

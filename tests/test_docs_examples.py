"""Every example of README.md and docs/CLI.md runs as written.

What runs, per document, in order, in one temporary folder per document (commands of a
document share its state: `hpcacq summary velocity.h5` reads what the `hpcacq run` line
before it wrote):

- every line of a fenced block labelled ``bash``, ``sh``, ``shell`` or unlabelled, when the
  block holds at least one ``hpcacq`` command (its other lines, e.g. ``mkdir``/``cp``, set the
  commands up and run too); blocks labelled ``text`` (outputs, syntax synopses), ``toml`` ...
  are not commands;
- every inline ``Example: `hpcacq ...` `` line;
- every ``python`` block, in a fresh interpreter.

Marking a line that must not run, or that fails on purpose, in the document itself:

- ``# not run: REASON`` at the end of the line (e.g. ``# not run: needs a SLURM cluster``):
  skipped, the reason shown in the test id;
- ``# exit N`` at the end of the line: the line is expected to exit with code N (e.g. a run
  over a folder holding a broken file on purpose exits 1).

A line fails on a non-zero exit code (unless marked), on a line of output whose numbers are
all NaN (``median = nan``), and on a results file it wrote whose OK analyses hold no finite
measurement. The data: README's folder ``data/`` holds copies of the real line scans
(``../shared/realdata``: Capillary1_0001 and the A89 files, with their headers and kymflow
sidecars); docs/CLI.md's ``data/`` is a small synthetic corpus with its ``truth.json`` (its
``validate`` example needs one). Substituted, because the documents use them as placeholders
or they point outside the test folder: ``OUT.h5`` (Python), ``image2d`` and ``paths``
(Python names left for the reader), ``../shared/realdata``, ``/tmp/demo``, ``/shared/`` (a cluster
file system) and ``docs/img/``.
Before a ``run``/``merge`` line without ``--resume``/``--overwrite`` its output is removed
(the documents show alternatives, not one script); ``velocity_*.h5`` for the merge example
is made by two runs over halves of ``data/``. MPI lines run with the venv's ``mpiexec``.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.realdata import find_realdata

REPO = Path(__file__).resolve().parents[1]
REALDATA = find_realdata() or (REPO.parent / "shared" / "realdata").resolve()
DOCS = ("README.md", "docs/CLI.md")
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
NOT_RUN = re.compile(r"#\s*not run:\s*(.+)$")
EXIT = re.compile(r"#\s*exit (\d+)\b")
TIMEOUT_S = 600
MEASUREMENT = {"radon_velocity": "velocity_mm_s", "diameter": "diameter_um"}


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    kind: str  # "shell" or "python"
    text: str
    skip: str = ""
    expect: int = 0

    @property
    def id(self) -> str:
        short = re.sub(r"\s+", " ", self.text.strip().splitlines()[0])[:60]
        return f"{self.doc}:{self.line}:{'SKIP ' if self.skip else ''}{short}"


def _is_command(line: str) -> bool:
    return bool(re.search(r"(^|[\s&;|(])(python -m )?hpcacq\s", line.strip() + " ")) and not line.startswith("#")


def extract(doc: str, text: str | None = None) -> list[Example]:
    """The runnable examples of ``doc`` (or of ``text``), in document order."""
    lines = ((REPO / doc).read_text(encoding="utf-8") if text is None else text).splitlines()
    examples: list[Example] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```\s*(\w*)\s*$", lines[i])
        if fence:
            label, start = fence.group(1).lower(), i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].startswith("```"))
            body = lines[start:end]
            if label == "python":
                examples.append(Example(doc, start + 1, "python", "\n".join(body)))
            elif label in SHELL_FENCES and any(_is_command(line) for line in body):
                for offset, line in enumerate(body):
                    if line.strip() and not line.lstrip().startswith("#"):
                        examples.append(_shell(doc, start + offset + 1, line))
            i = end + 1
            continue
        for match in re.finditer(r"Example: `([^`]+)`", lines[i]):
            examples.append(_shell(doc, i + 1, match.group(1)))
        i += 1
    return examples


def _shell(doc: str, number: int, line: str) -> Example:
    skip = NOT_RUN.search(line)
    expect = EXIT.search(line)
    return Example(doc, number, "shell", line.strip(), skip.group(1).strip() if skip else "",
                   int(expect.group(1)) if expect else 0)


ALL = [example for doc in DOCS for example in extract(doc)]


def test_the_documents_have_examples():
    """The extraction itself: both documents' commands and Python blocks are found."""
    by_doc = {doc: [e for e in ALL if e.doc == doc] for doc in DOCS}
    assert sum(e.kind == "python" for e in by_doc["README.md"]) >= 2
    assert sum(e.kind == "shell" and e.text.startswith("hpcacq ") for e in by_doc["README.md"]) >= 8
    assert sum(e.kind == "shell" and e.text.startswith("hpcacq ") for e in by_doc["docs/CLI.md"]) >= 8


def test_extraction_rules_and_markers():
    doc = "\n".join([
        "Example: `hpcacq summary out.h5`", "```text", "hpcacq run INPUTS... -o OUT.h5 [options]", "```",
        "```bash", "mkdir -p x", "hpcacq run x -o o.h5   # exit 1: a broken file on purpose",
        "mpiexec -n 64 python -m mpi4py -m hpcacq run x -o o.h5  # not run: needs 64 ranks", "```",
        "```bash", "pip install -e .", "```", "```python", "print(1)", "```"])
    got = [(e.kind, e.text.split("  #")[0].strip(), e.skip, e.expect) for e in extract("x.md", doc)]
    assert got == [("shell", "hpcacq summary out.h5", "", 0), ("shell", "mkdir -p x", "", 0),
                   ("shell", "hpcacq run x -o o.h5", "", 1),
                   ("shell", "mpiexec -n 64 python -m mpi4py -m hpcacq run x -o o.h5", "needs 64 ranks", 0),
                   ("python", "print(1)", "", 0)]


def test_nan_only_output_is_caught():
    assert _nan_only_lines("velocities become NaN in velocity_clean_mm_s (default 2)") == []  # prose
    assert _nan_only_lines("data/velocity_0001.tif mm/s nan\nok 1.25") == ["data/velocity_0001.tif mm/s nan"]
    assert _nan_only_lines("  'a.tif' ch0 roi 0: median velocity_clean_mm_s = nan") != []
    assert _nan_only_lines("velocity_0001.tif 0.4123 mm/s (97% of windows valid)\nno nan here: 2.5") == []


# ---------------------------------------------------------------------------- the folders
def _env() -> dict:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PYTHONPATH": path, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HPCACQ_REALDATA": str(REALDATA), "PYTHONWARNINGS": "ignore"}


def _readme_folder(root: Path) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    sources = sorted((REALDATA / "capillary1").glob("Capillary1_0001.*")) + sorted((REALDATA / "a89").glob("*.*"))
    for source in sources:
        if source.suffix in (".tif", ".txt", ".json") and not source.name.endswith("_radon.json"):
            shutil.copy(source, data / source.name)
    assert (data / "Capillary1_0001.tif").exists(), f"real data missing under {REALDATA}"
    return root


def _cli_folder(root: Path) -> Path:
    from hpcacq.synth.corpus import write_corpus

    write_corpus(root / "data", n_files=3, kind="velocity", n_lines=3000, seed=4, px_per_line_range=(0.6, 2.0))
    return root


FOLDERS = {"README.md": _readme_folder, "docs/CLI.md": _cli_folder}


class DocState:
    """One document's folder and the examples run so far."""

    def __init__(self, doc: str, root: Path, compiled_cache):
        self.doc, self.root = doc, FOLDERS[doc](root)
        self._compiled_cache = compiled_cache  # () -> a Numba cache already filled by `hpcacq compile`

    def substitute(self, text: str) -> str:
        text = text.replace("../shared/realdata", str(REALDATA))
        text = text.replace("/tmp/demo", str(self.root / "demo_tmp"))
        text = re.sub(r"(?<![\w.~])/shared/", str(self.root / "shared") + "/", text)
        if "docs/img/" in text:
            (self.root / "docs" / "img").mkdir(parents=True, exist_ok=True)
        return text

    def prepare(self, text: str) -> None:
        """Remove outputs a run/merge line writes (unless it resumes); make merge inputs; give
        `hpcacq compile --cache-dir DIR` a copy of the session's filled cache (compiling every
        kernel from empty is tests/test_compile.py's, and takes tens of seconds)."""
        for command in re.split(r"&&|;", text):
            words = shlex.split(command.split(" #")[0]) if command.strip() else []
            if {"compile", "--cache-dir"} <= set(words):
                cache = self.root / words[words.index("--cache-dir") + 1]
                if not cache.exists():
                    shutil.copytree(self._compiled_cache(), cache)
            if "hpcacq" not in " ".join(words) or not ({"run", "merge"} & set(words)):
                continue
            if "-o" in words and not {"--resume", "--overwrite"} & set(words):
                target = self.root / words[words.index("-o") + 1]
                for path in (target, Path(f"{target}.parts"), Path(f"{target}.lock")):
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
            if "merge" in words:
                for pattern in [w for w in words if "*" in w]:
                    if not glob.glob(str(self.root / pattern)):
                        self._job_array_outputs(pattern)

    def _job_array_outputs(self, pattern: str) -> None:
        files = sorted(str(p) for p in (self.root / "data").glob("*.tif"))
        for task, part in enumerate((files[: len(files) // 2], files[len(files) // 2:])):
            out = self.root / pattern.replace("*", str(task))
            subprocess.run([sys.executable, "-m", "hpcacq", "run", *part, "-o", str(out)], cwd=self.root,
                           env=_env(), check=True, capture_output=True, timeout=TIMEOUT_S)


@pytest.fixture(scope="module")
def states(tmp_path_factory, request):
    made: dict[str, DocState] = {}

    def get(doc: str) -> DocState:
        if doc not in made:
            made[doc] = DocState(doc, tmp_path_factory.mktemp(doc.replace("/", "_").replace(".", "_")),
                                 lambda: request.getfixturevalue("compiled_cache")[0])
        return made[doc]

    return get


# ---------------------------------------------------------------------------- the checks
def _nan_only_lines(text: str) -> list[str]:
    """Lines whose numbers are all NaN (a measurement that came out empty)."""
    bad = []
    for line in text.splitlines():
        # printed numbers: floats, and "nan" as Python/NumPy print it (prose says "NaN")
        numbers = re.findall(r"(?<![\w.])(nan|[-+]?\d+\.\d+(?:[eE][-+]?\d+)?)(?![\w.])", line)
        if numbers and all(n == "nan" for n in numbers):
            bad.append(line)
    return bad


def _results_files(root: Path, since: float) -> list[Path]:
    out = []
    for path in root.rglob("*.h5"):
        if path.stat().st_mtime >= since and ".parts" not in str(path):
            out.append(path)
    return out


def _check_results(path: Path) -> None:
    import numpy as np

    from hpcacq.results import iter_results

    try:
        results = list(iter_results(path))
    except Exception:  # noqa: BLE001 - not a results file (an input written by an example)
        return
    for meta, result in results:
        column = MEASUREMENT.get(meta["analysis"])
        if column in result.columns:
            values = np.asarray(result.columns[column], dtype=float)
            assert np.isfinite(values).any(), f"{path}: {meta['file']} {column} is all NaN"


def _run_shell(state: DocState, example: Example) -> subprocess.CompletedProcess:
    text = state.substitute(example.text)
    state.prepare(text)
    return subprocess.run(["bash", "-c", text], cwd=state.root, env=_env(), capture_output=True, text=True,
                          timeout=TIMEOUT_S)


PYTHON_PRELUDE = '''\
import glob, os
import numpy as np
from hpcacq.synth.velocity import make_velocity_kymograph
image2d = make_velocity_kymograph(2000, 38, px_per_line=1.0, rng=0)  # a line scan (time x space)
paths = sorted(glob.glob(os.path.join(os.getcwd(), "*.tif")))
'''


def _run_python(state: DocState, example: Example) -> subprocess.CompletedProcess:
    outputs = sorted(state.root.glob("*.h5"), key=lambda p: (p.name != "velocity.h5", p.name))
    text = example.text.replace('"OUT.h5"', repr(str(outputs[0])) if outputs else '"OUT.h5"')
    return subprocess.run([sys.executable, "-c", PYTHON_PRELUDE + text], cwd=state.root / "data", env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.realdata
@pytest.mark.parametrize("example", ALL, ids=[e.id for e in ALL])
def test_example_runs_as_written(states, example):
    if example.skip:
        return  # marked `# not run: REASON` in the document (the reason is in the test id and the doc)
    state = states(example.doc)
    import time

    since = time.time() - 1.0
    out = (_run_python if example.kind == "python" else _run_shell)(state, example)
    where = f"{example.doc} line {example.line}: {example.text}\n--- stdout\n{out.stdout[-3000:]}\n" \
            f"--- stderr\n{out.stderr[-3000:]}"
    assert out.returncode == example.expect, f"exit code {out.returncode} (expected {example.expect})\n{where}"
    assert not _nan_only_lines(out.stdout), f"NaN-only output {_nan_only_lines(out.stdout)}\n{where}"
    for path in _results_files(state.root, since):
        _check_results(path)

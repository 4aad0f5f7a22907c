"""The driver frees each file's image as soon as the file is done (peak memory per rank).

An AcqImage and its analysis set refer to each other, so reference counting alone never
frees them; the driver collects that garbage after each file instead of leaving it to
Python's next full collection, several files (and tens of MB) later.
"""

from __future__ import annotations

import gc
import weakref

from hpcacq.jobs.config import JobConfig
from hpcacq.jobs.driver import execute_job
from hpcacq.model import AcqImage
from hpcacq.synth.corpus import write_corpus


def test_images_of_finished_files_are_freed_and_gc_state_restored(tmp_path, monkeypatch):
    paths = write_corpus(tmp_path / "data", n_files=4, n_lines=400, seed=2)
    opened: dict[str, weakref.ref] = {}
    original = AcqImage.open.__func__

    def tracking_open(cls, path, **kwargs):
        image = original(cls, path, **kwargs)
        opened[str(path)] = weakref.ref(image)
        return image

    monkeypatch.setattr(AcqImage, "open", classmethod(tracking_open))
    alive_after = []

    def on_file(record):
        alive_after.append(opened[record.file_path]() is not None)

    freeze_before, enabled_before = gc.get_freeze_count(), gc.isenabled()
    config = JobConfig(inputs=tuple(map(str, paths)), output=str(tmp_path / "o.h5"), analysis="radon_velocity",
                       threads=1)
    summary = execute_job(config, on_file_result=on_file, use_mpi=False)
    assert summary.n_ok == 4 and len(opened) == 4
    assert alive_after == [False] * 4  # each image was gone when its result reached the writer
    assert gc.get_freeze_count() == freeze_before and gc.isenabled() == enabled_before

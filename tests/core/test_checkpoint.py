import argparse

import pytest
import torch

from projects.core.checkpoint import load_checkpoint, save_checkpoint
from projects.core.errors import CheckpointError


def test_atomic_save_round_trip_leaves_no_temp_files(tmp_path):
    state = {"model": {"w": torch.arange(4.0)}, "epoch": 3}
    path = save_checkpoint(state, tmp_path / "ck" / "last.pt")
    loaded = load_checkpoint(path)
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = save_checkpoint({"epoch": 1}, tmp_path / "last.pt")

    class Unsavable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_checkpoint({"epoch": 2, "bad": Unsavable()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_not_a_checkpoint_and_arbitrary_pickles_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="is not a torch checkpoint"):
        load_checkpoint(text)
    # weights_only=True: a pickle that would import arbitrary code is rejected.
    evil = tmp_path / "evil.pt"
    torch.save({"obj": argparse.Namespace(a=1)}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")

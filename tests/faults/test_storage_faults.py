"""A full disk and an artifact store that turns read-only mid-run: one ``error:`` line, the run FAILED,
the last good checkpoint intact, and a re-run resumes once the storage is fixed. Real size-limited and
read-only file systems (tmpfs), because root ignores file permissions."""

from __future__ import annotations

from projects.core.guardian import END_REASON_TAG
from tests.faults.helpers import (
    CLASSIFY,
    CLASSIFY_STEPS_PER_EPOCH,
    assert_continuous_curves,
    finish,
    last_checkpoint,
    launch,
    launch_paused,
    remount,
    run_ids,
    tmpfs,
    wait_status,
)


def test_disk_full_then_read_only_artifact_store_then_resume(tmp_path):
    checkpoints = tmp_path / "checkpoints"  # PROJECTS_CHECKPOINT_DIR of the test
    # One epoch's last.pt (134 MB: weights + AdamW moments) and best.pt (45 MB) fit; the next last.pt not.
    with tmpfs(checkpoints, "250m"), tmpfs(tmp_path / "mlruns", "2g") as artifacts:
        code, err = finish(launch("classify", CLASSIFY))
        assert code == 1, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: cannot write checkpoint") and "No space left on device" in last
        (run_id,) = run_ids()
        run = wait_status(run_id, "FAILED")
        assert run.data.tags[END_REASON_TAG] == last
        assert last_checkpoint(run_id)["epoch"] == 1
        assert sorted(p.name for p in (checkpoints / run_id).iterdir()) == ["best.pt", "last.pt"]

        # More space; the artifact store becomes read-only during epoch 2 of the resumed run.
        remount(checkpoints, "size=1g")
        proc = launch_paused("classify", CLASSIFY, CLASSIFY_STEPS_PER_EPOCH + 2, tmp_path)
        remount(artifacts, "ro")
        code, err = finish(proc)
        assert code == 1, err[-2000:]
        assert err.strip().splitlines()[-1].startswith("error: cannot copy ")
        wait_status(run_id, "FAILED")
        assert last_checkpoint(run_id)["epoch"] == 2  # the local checkpoint was written first

        remount(artifacts, "rw")
        code, err = finish(launch("classify", CLASSIFY))
        assert code == 0, err[-2000:]
        wait_status(run_id, "FINISHED")
        assert_continuous_curves(run_id, epochs=3)

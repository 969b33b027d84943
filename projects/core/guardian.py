"""The guardian: a small process that watches a run's process from outside and ends the run correctly.

Some endings cannot be handled inside the process: ``kill -9``, the OOM killer, a crash of the
interpreter, and MLflow's ``mlflow run`` launcher, which sets the status of its run after our process
exits (FAILED for any non-zero exit code, also after an interrupt we ended KILLED). So every top-level
tracked run starts a guardian (:func:`start_guardian`) in its own session, which

- learns the intended final status through a pipe (:meth:`Guardian.report`), written just before exit;
- waits until the process is gone (a pidfd: exact even if the pid is reused), then until the
  ``mlflow run`` launcher that started it (if any) is gone too;
- sets the run's status to the intended one, or to KILLED with ``projects.end_reason`` when the process
  died without reporting; closes the RUNNING child runs it left (tune trials, study children) the same
  way; deletes the empty launcher run of a resumed attempt (``projects.resumed_into``);
- while the process lives, refreshes the run's ``projects.heartbeat`` tag every ``HEARTBEAT_S`` seconds,
  which tells another machine that the run is alive.

Inside the run's process, :func:`follow_launcher` stops it gracefully when its ``mlflow run`` launcher
dies first (a SIGTERM, SIGINT or SIGHUP sent to the launcher alone).

It only touches the run while the run is still owned by the process it watches (``projects.owner``), so
a run resumed by a new process in the meantime is left alone. ``python -m projects.core.guardian`` is the
process; it imports MLflow only when it has something to write.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from projects.core.run_lock import lock_path

HEARTBEAT_S = float(os.environ.get("PROJECTS_HEARTBEAT_S", "60"))
LAUNCHER_WAIT_S = 120.0  # how long to wait for the launcher after our process ended
OWNER_TAG = "projects.owner"
HEARTBEAT_TAG = "projects.heartbeat"
END_REASON_TAG = "projects.end_reason"
RESUMED_INTO_TAG = "projects.resumed_into"
UNREPORTED = "the process ended without closing its run (kill -9, out of memory, or a crash)"


@dataclass
class Guardian:
    """The run process's side: report the outcome before exiting."""

    process: subprocess.Popen
    pipe: IO[str]

    def report(self, status: str, reason: str = "") -> None:
        try:
            self.pipe.write(f"{status}\t{reason.splitlines()[0] if reason else ''}\n")
            self.pipe.flush()
        except (OSError, ValueError):  # the guardian is gone: nothing else can be done
            pass


def owner_token() -> str:
    """``host:pid``: who runs a run now (written as ``projects.owner`` when a process starts or resumes it)."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def launcher_pid() -> int | None:
    """The ``mlflow run`` process that started this one, if any (Linux: read from /proc)."""
    pid = os.getppid()
    for _ in range(4):  # mlflow -> bash -c -> python, or mlflow -> python when bash execs
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        names = [os.path.basename(a.decode(errors="replace")) for a in argv]
        if "mlflow" in names and "run" in names[names.index("mlflow") :]:
            return pid
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent pid
        if pid <= 1:
            return None
    return None


def follow_launcher() -> None:
    """Stop this process as SIGTERM would when the ``mlflow run`` launcher that started it dies first.

    A ``kill <pid>`` of the launcher, a container stop (SIGTERM to PID 1) or a supervisor that signals
    only the main process ends the launcher but not its command, which would train on orphaned and
    register a model. A daemon thread waits on the launcher's pidfd and, when it is gone, sends this
    process SIGTERM: the graceful stop (checkpoint, KILLED, exit 143).
    """
    launcher = launcher_pid()
    if launcher is None or not hasattr(os, "pidfd_open"):
        return
    try:
        fd = os.pidfd_open(launcher)
    except ProcessLookupError:
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
            os.close(fd)
        print(f"the mlflow run launcher (pid {launcher}) is gone: stopping as on SIGTERM", file=sys.stderr)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="follow-launcher", daemon=True).start()


_enabled = False


@contextmanager
def enabled() -> Iterator[None]:
    """Entry-point processes run their work in this block: their top-level runs get a guardian.
    In-process callers (tests, notebooks) do not, and end their runs themselves."""
    global _enabled
    previous, _enabled = _enabled, True
    try:
        yield
    finally:
        _enabled = previous


def start_guardian(run_id: str, launcher_run_id: str | None = None) -> Guardian | None:
    """Start the guardian of ``run_id`` (owned by this process); None outside entry-point processes and
    where it cannot run (no pidfd)."""
    if not _enabled or not hasattr(os, "pidfd_open"):
        return None
    import mlflow

    cmd = [
        sys.executable,
        "-m",
        "projects.core.guardian",
        "--run-id",
        run_id,
        "--pid",
        str(os.getpid()),
        "--owner",
        owner_token(),
        "--tracking-uri",
        mlflow.get_tracking_uri(),
    ]
    launcher = launcher_pid()
    if launcher:
        cmd += ["--launcher-pid", str(launcher)]
    if launcher_run_id:
        cmd += ["--launcher-run-id", launcher_run_id]
    # Its own session: the terminal's Ctrl-C and the launcher's SIGTERM to our group do not reach it. Its
    # output goes to a log beside the run's lock, not to our stdout/stderr: a pipe reading ours (`| tee`,
    # subprocess) would otherwise wait for the guardian as well.
    log = open(lock_path(run_id).with_suffix(".guardian.log"), "ab")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=log, stderr=log, text=True, start_new_session=True
    )
    log.close()
    return Guardian(process, process.stdin)


# -- the guardian process -------------------------------------------------------------------------------


def _wait_exit(pid: int, timeout: float | None, on_tick=None, tick: float = HEARTBEAT_S) -> bool:
    """Wait for ``pid`` to exit; True if it did within ``timeout``. ``on_tick`` runs every ``tick`` s."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wait = tick if deadline is None else max(0.0, min(tick, deadline - time.monotonic()))
            if select.select([fd], [], [], wait)[0]:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            if on_tick:
                on_tick()
    finally:
        os.close(fd)


def _read_report(fd: int) -> tuple[str | None, str]:
    """The last ``status<TAB>reason`` line the process wrote. Non-blocking: the process is gone, but a
    forked DataLoader worker may still hold the pipe open for a moment."""
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None, ""
    status, _, reason = lines[-1].partition("\t")
    return status, reason


def _owned(client, run_id: str, owner: str) -> bool:
    return client.get_run(run_id).data.tags.get(OWNER_TAG, owner) == owner


def close_children(client, run_id: str, status: str, reason: str) -> None:
    """End the RUNNING runs nested under ``run_id`` (recursively) with ``status``."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    children = client.search_runs(
        experiments, f"tags.`mlflow.parentRunId` = '{run_id}' AND attributes.status = 'RUNNING'"
    )
    for child in children:
        close_children(client, child.info.run_id, status, reason)
        client.set_tag(child.info.run_id, END_REASON_TAG, reason)
        client.set_terminated(child.info.run_id, status)


def finalize(run_id: str, owner: str, status: str | None, reason: str, launcher_run_id: str | None) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if launcher_run_id and launcher_run_id != run_id:
        try:
            client.delete_run(launcher_run_id)  # the launcher has exited: its empty run can go
        except Exception:
            pass
    if not _owned(client, run_id, owner):
        return  # another process has resumed the run since
    current = client.get_run(run_id).info.status
    if status is None:  # died without reporting; FAILED here is the launcher's verdict on a non-zero exit
        status, reason = ("KILLED", UNREPORTED) if current in ("RUNNING", "FAILED") else (current, "")
    if reason:
        client.set_tag(run_id, END_REASON_TAG, reason)
    if current != status:
        client.set_terminated(run_id, status)
    close_children(client, run_id, status, reason or f"parent run ended {status}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--owner", required=True)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--launcher-pid", type=int)
    parser.add_argument("--launcher-run-id")
    args = parser.parse_args(argv)
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    os.environ.pop("MLFLOW_RUN_ID", None)

    def heartbeat() -> None:
        from mlflow.tracking import MlflowClient

        try:
            MlflowClient().set_tag(args.run_id, HEARTBEAT_TAG, str(int(time.time())))
        except Exception:  # a tracking store that is briefly unreachable: the next beat tries again
            pass

    _wait_exit(args.pid, None, heartbeat)
    status, reason = _read_report(sys.stdin.fileno())
    if status is not None and not args.launcher_run_id and (not args.launcher_pid or status == "FINISHED"):
        return  # the process closed its run itself, and no launcher will overwrite or leave anything
    if args.launcher_pid:
        _wait_exit(args.launcher_pid, LAUNCHER_WAIT_S)
    for attempt in range(5):
        try:
            finalize(args.run_id, args.owner, status, reason, args.launcher_run_id)
            return
        except Exception as exc:  # tracking store unreachable: retry, then give up with a message
            if attempt == 4:
                print(f"guardian: could not close run {args.run_id}: {exc}", file=sys.stderr)
            time.sleep(2**attempt)


if __name__ == "__main__":
    main()

"""SIGINT and SIGTERM as one graceful stop: the run ends KILLED with a checkpoint at the current step.

Python turns SIGINT into ``KeyboardInterrupt`` and dies at once on SIGTERM, the signal that ``timeout``,
``docker stop``, SLURM and Kubernetes send before they kill. With :func:`install_handlers` both raise
:class:`Interrupted` (a ``KeyboardInterrupt``, so every ``except KeyboardInterrupt`` handles it). Inside
:func:`deferred` (the training loop's steps) the stop waits for the current step to end, so that the
checkpoint written on the way out holds a consistent model and optimiser. Further signals while stopping
are ignored: MLflow's launcher sends SIGTERM right after the terminal's SIGINT, and the graceful stop must
finish (kill -9 is the way to stop at once).

Under data-parallel training (:func:`synchronized`) a stop takes effect only where the loop polls for it
(:func:`poll`), and every process agrees there on whether one was requested: all ranks stop at the same
step, so the collective operations of the checkpoint on the way out match.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by ``signal_name``."""

    def __init__(self, signal_name: str = "SIGINT"):
        super().__init__(signal_name)
        self.signal_name = signal_name

    @property
    def exit_code(self) -> int:
        return 128 + int(signal.Signals[self.signal_name])


class _StopState:
    requested: str | None = None  # name of the first signal received
    raised = False
    defer_depth = 0
    agree: Callable[[str | None], str | None] | None = None  # set inside synchronized()


_state = _StopState()


def _handler(signum: int, frame: object) -> None:
    if _state.requested is not None:
        return  # already stopping
    _state.requested = signal.Signals(signum).name
    if _state.defer_depth == 0 and _state.agree is None:
        _state.raised = True
        raise Interrupted(_state.requested)


def install_handlers() -> None:
    """Route SIGINT and SIGTERM through the graceful stop (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    reset()
    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)


@contextmanager
def handled() -> Iterator[None]:
    """:func:`install_handlers` for the block; the previous handlers afterwards (in-process callers)."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    install_handlers()
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        reset()


def reset() -> None:
    _state.requested, _state.raised, _state.defer_depth, _state.agree = None, False, 0, None


def stop_requested() -> str | None:
    return _state.requested


def raise_if_requested() -> None:
    """Raise the pending stop (called at step boundaries inside :func:`deferred`); inside
    :func:`synchronized` only :func:`poll` decides."""
    if _state.requested is not None and not _state.raised and _state.agree is None:
        stop(_state.requested)


def poll() -> str | None:
    """The stop to act on now, if any: the signal received, or inside :func:`synchronized` the one any
    process received (a collective operation: every process must poll at the same points)."""
    local = None if _state.raised else _state.requested
    return _state.agree(local) if _state.agree is not None else local


def stop(name: str) -> NoReturn:
    """Raise the stop ``name`` (also on a process that did not receive it itself)."""
    _state.requested = _state.requested or name
    _state.raised = True
    raise Interrupted(name)


@contextmanager
def synchronized(agree: Callable[[str | None], str | None]) -> Iterator[None]:
    """Stops take effect only at :func:`poll`, where ``agree`` (e.g. an all-reduce over the ranks) turns
    each process's request into the common decision. After the block, a pending stop raises as usual."""
    _state.agree = agree
    try:
        yield
    finally:
        _state.agree = None
    raise_if_requested()


@contextmanager
def deferred() -> Iterator[None]:
    """A signal inside this block raises at the next :func:`raise_if_requested` or when the block ends."""
    _state.defer_depth += 1
    try:
        yield
    finally:
        _state.defer_depth -= 1
    raise_if_requested()

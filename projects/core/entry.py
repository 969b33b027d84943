"""Entry-point wrapper: parse the typed config, run, and turn user errors into one line + exit 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from projects.core.config import parse_args
from projects.core.errors import ProjectError

C = TypeVar("C")

EXIT_USER_ERROR = 2


def main(config_cls: type[C], run: Callable[[C], Any], argv: Sequence[str] | None = None) -> None:
    """``python -m projects.<study>.<task> --param value ...``: the body of every entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = parse_args(config_cls, argv)
        run(config)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted: the run is marked KILLED; re-run the same command to resume", file=sys.stderr)
        sys.exit(130)

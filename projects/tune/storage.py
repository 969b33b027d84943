"""Optuna storage from a URL: a journal file by default (safe for several processes on one machine, opened
directly by ``optuna-dashboard``), or an RDB URL such as ``postgresql://user:pw@host/db`` for many machines.

SQLite is deliberately not offered as the default: Optuna's FAQ warns it breaks under parallel workers.
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import optuna
from optuna.storages import JournalStorage, RDBStorage, _CachedStorage
from optuna.storages.journal import JournalFileBackend

from projects.core.errors import ConfigError
from projects.core.tracking import redact

# Relative to the working directory: the repository root under `mlflow run .`.
DEFAULT_JOURNAL = "studies/optuna-journal.log"
RDB_SCHEMES = ("postgresql", "postgres", "mysql", "sqlite")


def is_rdb(url: str) -> bool:
    return bool(re.match(rf"^({'|'.join(RDB_SCHEMES)})(\+\w+)?://", url))


def storage_url(url: str) -> str:
    return url or DEFAULT_JOURNAL


def engine_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; the project ships psycopg2-binary."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None:
        return f"postgresql+psycopg2{sep}{rest}"
    return url


def _schema_race(exc: Exception) -> bool:
    """A concurrent ``CREATE`` of the same table or type by another process (PostgreSQL reports a duplicate
    name or a unique violation in its catalog)."""
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)


def _rdb_storage(url: str, attempts: int = 4) -> RDBStorage:
    """Workers on several machines that open an empty database at the same moment all create Optuna's
    tables; all but one lose that race and find the tables there when they try again."""
    # pool_pre_ping: a worker survives a server-side idle disconnect between long trials.
    engine_kwargs = {"pool_pre_ping": True}
    for attempt in range(1, attempts):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs)
        except Exception as exc:
            if not _schema_race(exc):
                raise
            time.sleep(0.5 * attempt)
    return RDBStorage(url, engine_kwargs=engine_kwargs)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Open the storage (creating the journal file or the tables); one ``ConfigError`` line if it fails."""
    url = storage_url(url)
    if is_rdb(url):
        url = engine_url(url)
        try:
            rdb = _rdb_storage(url)
            # Wrapped as load_study would wrap it, so that the object a worker claims trials through is
            # the study's own storage (its trial cache must know the claimed trial).
            return _CachedStorage(rdb)
        except Exception as exc:  # sqlalchemy/driver errors: unreachable host, bad credentials, no database
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"storage {redact(url)} is unreachable: {reason}") from None
    if "://" in url:
        raise ConfigError(f"storage {url!r}: use a journal file path or a postgresql:// / mysql:// URL")
    path = Path(url).expanduser()
    if path.is_dir():
        raise ConfigError(f"storage {path} is a directory; give a journal file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise ConfigError(f"storage {path} cannot be opened: {exc}") from None


def check_reachable(url: str) -> None:
    """Fail early on a bad or unreachable storage, before anything is written anywhere."""
    url = storage_url(url)
    if is_rdb(url):
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(engine_url(url))
            with engine.connect():
                pass
            engine.dispose()
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"storage {redact(url)} is unreachable: {reason}") from None
    elif "://" in url:
        raise ConfigError(f"storage {url!r}: use a journal file path or a postgresql:// / mysql:// URL")
    elif Path(url).expanduser().is_dir():
        raise ConfigError(f"storage {url} is a directory; give a journal file path")

"""``make server``: an MLflow tracking server for a team, on PostgreSQL, serving the artifacts itself.

    python -m projects.core.server                                  # http://127.0.0.1:5000, data in ./mlflow-server
    PGPASSWORD=... python -m projects.core.server --host 0.0.0.0    # reachable from other machines
    python -m projects.core.server --backend-store-uri postgresql://mlflow@db:5432/mlflow \\
        --artifacts-destination s3://bucket/mlflow
    python -m projects.core.server -- --allowed-hosts mlflow.lab:5000   # after --: more `mlflow server` options

Without ``--backend-store-uri`` the runs and the registry live in a PostgreSQL cluster under
``<data>/postgres``, created with Debian's ``initdb`` on first use, started with ``pg_ctl`` and stopped
again with the server. It holds two databases: ``mlflow`` (the tracking and registry store) and
``optuna`` (a storage that ``tune`` workers on many machines share). Then ``mlflow server`` runs with
``--serve-artifacts``: clients upload and download artifacts through it and need no access to
``--artifacts-destination`` themselves.

A password is never part of a URI this command builds: PostgreSQL's client library reads it from
``PGPASSWORD`` or ``~/.pgpass``, here, in ``mlflow server`` and in every client. A new cluster takes
``PGPASSWORD`` as the password of its user; without one it is created with trust authentication and
listens on loopback only.

Ctrl-C or SIGTERM stops the MLflow server, then the cluster this command started. A problem found before
the server runs (port in use, wrong password, PostgreSQL missing) is one ``error:`` line, exit code 2,
and leaves nothing new behind but a stopped cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projects.core.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DATABASES = ("mlflow", "optuna")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def pg_bindir(hint: str | None = None) -> Path:
    """The folder with ``initdb`` and ``pg_ctl``: ``hint``, else Debian's newest, else ``PATH``'s."""
    candidates = [Path(hint)] if hint else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not hint and shutil.which("pg_ctl"):
        candidates.append(Path(shutil.which("pg_ctl")).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    where = hint or "/usr/lib/postgresql/*/bin or PATH"
    raise ConfigError(
        f"PostgreSQL binaries (initdb, pg_ctl) not found in {where}: apt-get install postgresql"
    )


def free_port() -> int:
    """A port nobody listens on at the moment, on loopback (for throw-away servers: tests, benchmarks)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_port_free(host: str, port: int, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"port {port} on {host} is in use ({exc.strerror}); pick another {option}"
            ) from None


@dataclass
class Cluster:
    """A PostgreSQL cluster in a folder. postgres refuses to run as root, so under root every command
    runs as the ``postgres`` user (Debian's package creates it), which must be able to reach the folder."""

    data: Path
    port: int
    user: str = "mlflow"
    listen: str = "127.0.0.1"
    options: str = ""  # more server settings, e.g. "-c fsync=off" for throw-away test clusters
    bindir: Path | None = None

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        bindir = self.bindir or pg_bindir()
        # Its own session: a Ctrl-C in the terminal reaches this launcher, which stops the cluster last.
        return subprocess.run(
            [*prefix, str(bindir / tool), *args], capture_output=True, text=True, start_new_session=True
        )

    @property
    def exists(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self, password: str | None) -> None:
        """``initdb`` with scram-sha-256 over TCP when there is a password, trust otherwise."""
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        with tempfile.TemporaryDirectory() as tmp:
            auth = ["--auth=trust"]
            if password:
                pwfile = Path(tmp) / "pw"
                pwfile.write_text(password + "\n")
                if os.geteuid() == 0:
                    shutil.chown(tmp, "postgres")
                    shutil.chown(pwfile, "postgres")
                auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
            result = self._run("initdb", "-D", str(self.data), "-U", self.user, "-E", "UTF8", *auth)
        if result.returncode != 0:
            shutil.rmtree(self.data, ignore_errors=True)
            root = " (as root it runs as user postgres, which must be able to reach the folder)"
            raise ConfigError(
                f"initdb {self.data} failed: {_last_line(result.stderr)}" + root * (os.geteuid() == 0)
            )
        if (
            password
        ):  # other machines too, always with the password; listen_addresses decides who can reach it
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all all scram-sha-256\n")

    def start(self) -> None:
        listen = "*" if self.listen in ("0.0.0.0", "::") else self.listen
        # No Unix socket: its path would be limited to 107 bytes; clients use TCP.
        options = (
            f"-c listen_addresses='{listen}' -p {self.port} -c unix_socket_directories='' {self.options}"
        )
        log = self.data / "postgres.log"
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"
        )
        if result.returncode != 0:
            reason = _last_line(log.read_text() if log.exists() else result.stderr)
            raise ConfigError(f"PostgreSQL in {self.data} did not start: {reason}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str, host: str = "127.0.0.1") -> str:
        return f"postgresql://{self.user}@{host}:{self.port}/{database}"


def connect(url: str, database: str | None = None) -> Any:
    """A psycopg2 connection for a ``postgresql[+driver]://`` URL; the password comes from the URL, else from
    ``PGPASSWORD`` / ``~/.pgpass``. A failure is one line that names user, host and database, never a password."""
    import psycopg2

    parts = urllib.parse.urlsplit(url)
    dbname = database or parts.path.lstrip("/") or "postgres"
    where = f"{parts.username or ''}@{parts.hostname}:{parts.port or 5432}/{dbname}"
    try:
        return psycopg2.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            dbname=dbname,
            connect_timeout=10,
        )
    except psycopg2.Error as exc:
        reason = _last_line(str(exc)).rpartition("FATAL:")[2].strip()
        if "password" in reason and not parts.password:
            reason += " (the password comes from PGPASSWORD or ~/.pgpass)"
        raise ConfigError(f"PostgreSQL {where}: {reason}") from None


def create_databases(cluster: Cluster, names: tuple[str, ...] = DATABASES) -> None:
    conn = connect(cluster.url("postgres"))
    conn.autocommit = True
    with conn.cursor() as cursor:
        for name in names:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; the project ships psycopg2."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2{sep}{rest}" if scheme in ("postgresql", "postgres") else url


def wait_healthy(url: str, server: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/health", timeout=5):
                return
        if server.poll() is not None:
            raise ConfigError(f"mlflow server exited with code {server.returncode}; its output is above")
        if time.monotonic() > deadline:
            raise ConfigError(f"mlflow server did not answer {url}/health within {timeout_s:.0f} s")
        time.sleep(0.5)


def stop_process_group(process: subprocess.Popen, timeout_s: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m projects.core.server",
        description="MLflow tracking server on PostgreSQL with proxied artifacts. Arguments after -- go to "
        "`mlflow server` (e.g. --allowed-hosts).",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to serve on; 0.0.0.0 for other machines"
    )
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="server processes (MLflow's default is 4)")
    parser.add_argument("--data", default="mlflow-server", help="folder of the local cluster and artifacts")
    parser.add_argument(
        "--backend-store-uri",
        default="",
        help="an existing database (password: PGPASSWORD); '' = local cluster",
    )
    parser.add_argument(
        "--artifacts-destination", default="", help="folder or object store; '' = <data>/artifacts"
    )
    parser.add_argument("--pg-port", type=int, default=5433, help="port of the local cluster")
    parser.add_argument("--pg-user", default="mlflow", help="user of the local cluster")
    parser.add_argument("--pg-bin", default="", help="folder of initdb and pg_ctl; '' = Debian's or PATH's")
    parser.add_argument(
        "--pg-options", default="", help="more settings of the local cluster ('-c name=value')"
    )
    args, extra = parser.parse_known_args(argv)
    return args, extra[1:] if extra[:1] == ["--"] else extra


def serve(args: argparse.Namespace, extra: list[str]) -> int:
    """Start what is needed, run ``mlflow server`` until it exits or a signal arrives, stop what was started."""
    check_port_free(args.host, args.port, "--port")
    data = Path(args.data).resolve()
    cluster = None
    backend = args.backend_store_uri
    if not backend:
        password = os.environ.get("PGPASSWORD")
        cluster = Cluster(data / "postgres", args.pg_port, args.pg_user, args.host, args.pg_options)
        cluster.bindir = pg_bindir(args.pg_bin or None)
        if not cluster.exists and not password and args.host not in LOOPBACK:
            raise ConfigError(f"--host {args.host} serves other machines: set PGPASSWORD for the new cluster")
        check_port_free(args.host, args.pg_port, "--pg-port")
        if not cluster.exists:
            cluster.init(password)
        backend = cluster.url("mlflow")
    server = None
    try:
        if cluster:
            cluster.start()
            create_databases(cluster)
        elif backend.startswith(("postgresql", "postgres")):
            connect(backend).close()
        destination = args.artifacts_destination or str(data / "artifacts")
        if "://" not in destination:
            Path(destination).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", sqlalchemy_url(backend)]
        command += ["--artifacts-destination", destination, "--serve-artifacts", "--host", args.host]
        command += ["--port", str(args.port), "--workers", str(args.workers), *extra]
        # MLflow's job runners (GenAI scorers, trace archival: several busy processes) serve nothing here.
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
        server = subprocess.Popen(command, env=env, start_new_session=True)
        local = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
        wait_healthy(f"http://{local}:{args.port}", server)
        name = socket.getfqdn() if args.host in ("0.0.0.0", "::") else args.host
        print(f"tracking server ready: export MLFLOW_TRACKING_URI=http://{name}:{args.port}", flush=True)
        if cluster:
            storage = cluster.url("optuna", name)
            print(f"tune storage: -P storage={storage} (password: PGPASSWORD or ~/.pgpass)", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server is not None:
            stop_process_group(server)
        if cluster:
            cluster.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    args, extra = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored (`&`, nohup)
        signal.signal(signum, _interrupt)
    try:
        code = serve(args, extra)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    main()

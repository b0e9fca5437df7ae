"""Fixtures: a real `persona serve` process reached with Python's ADBC Flight SQL driver."""

import os
import socket
import subprocess
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"


def persona_binary() -> str:
    if os.environ.get("PERSONA_BIN"):
        return str(Path(os.environ["PERSONA_BIN"]).resolve())
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "persona"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("build persona first (cargo build) or set PERSONA_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path, *extra: str):
        self.port = free_port()
        self.uri = f"grpc://127.0.0.1:{self.port}"
        self.log = open(workdir / f"persona-{self.port}.log", "w+")
        self.proc = subprocess.Popen(
            [persona_binary(), "serve", "--listen", f"127.0.0.1:{self.port}", *extra],
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 600.0):
        # The first start materializes the embedded lakehouse; poll the port, and fail at once
        # if the process exits.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"persona exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"persona did not listen within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def connect(self):
        # persona is read-only and has no transactions: say so, or DB-API warns at connect.
        return flight_sql.connect(self.uri, autocommit=True)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("embedded")
    s = Server(workdir)
    yield s
    s.stop()


@pytest.fixture()
def conn(server):
    with server.connect() as c:
        yield c

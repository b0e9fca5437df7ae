"""Fixtures: a real `persona serve` process reached with Python's ADBC Flight SQL driver."""

import os
import re
import subprocess
import threading
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import pytest

REPO = Path(__file__).resolve().parents[2]


def persona_binary() -> str:
    if os.environ.get("PERSONA_BIN"):
        return str(Path(os.environ["PERSONA_BIN"]).resolve())
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "persona"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("build persona first (cargo build) or set PERSONA_BIN")


class Server:
    """`persona serve` on a port the OS picks; the address is read from the line it prints."""

    def __init__(self, workdir: Path, *extra: str, timeout: float = 600.0):
        self.workdir = workdir
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [persona_binary(), "serve", "--listen", "127.0.0.1:0", *extra],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read_output, daemon=True).start()
        # The first start materializes the embedded lakehouse, which takes a while in a debug build.
        if not self.ready.wait(timeout) or not hasattr(self, "uri"):
            self.proc.kill()
            raise RuntimeError(f"persona did not start serving:\n{self.output()}")

    def _read_output(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"serving Flight SQL on (grpc://\S+)", line)
            if found:
                self.uri = found.group(1)
                self.ready.set()
        self.ready.set()  # the process ended: wake the waiter, which sees no address

    def output(self) -> str:
        return "".join(self.lines)

    def connect(self):
        # persona is read-only and has no transactions: say so, or DB-API warns at connect.
        return flight_sql.connect(self.uri, autocommit=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


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

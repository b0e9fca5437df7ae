#!/usr/bin/env python3
"""Ingest throughput: Arrow over Flight SQL into Delta with persona, against the Python
`deltalake` writer writing the very same Arrow data in the same run.

    python bench/ingest.py                                  # 10M events, release build, 3 repeats
    python bench/ingest.py --rows 200000 --persona target/debug/persona --repeat 1
    python bench/ingest.py --clients 4 --micro-batch-rows 500000
    python bench/ingest.py --clients 0                      # no concurrent-clients variant

Data. --rows synthetic click / order events (default 10,000,000) are generated once, seeded
(--seed), in memory as Arrow record batches of --batch-rows rows: event_id int64 (0 .. rows-1,
unique), event_time timestamp[us, tz=UTC] (rising, with jitter), customer_id string (about 5%
null: anonymous visitors), event_type string (view / click / add_to_cart / order / refund),
url string and amount float64 (non-zero for orders and refunds). MB/s is the Arrow in-memory
size (sum of the batches' `nbytes`) divided by the wall time; both writers get the same bytes.

What is timed (time.perf_counter around one call, wall time, nothing else inside):
- persona: `cursor.adbc_ingest("events_<r>", reader, mode="create")` with a
  pyarrow.RecordBatchReader over all the batches, so the ADBC driver streams them in one
  Flight SQL bulk ingest (CommandStatementIngest) to `persona serve`, which commits them into
  <work>/d/lakehouse/events_<r> in micro-batches of --micro-batch-rows ([ingest] batch_rows).
  The call returns after persona's last commit, so the figure is end to end: client encoding,
  gRPC, server decoding, Parquet writing and the Delta commits. The connection is opened
  before the clock starts.
- persona, N clients (--clients, default 2): N connections, each `adbc_ingest(...,
  mode="create_append")` of its contiguous share of the batches into one table
  <work>/d/lakehouse/events_concurrent_<r>, all started together from threads; the time is
  from the start to the last client's answer.
- python: `deltalake.write_deltalake(<work>/python/events_<r>, reader, mode="overwrite")`,
  in this process, onto a fresh path (a new table, like persona's create).
Each repeat (--repeat, default 3) writes new tables; the order of persona and python flips
every repeat so neither always runs on a warmer machine, and dirty pages are flushed (os.sync)
before each timed call so one writer's page-cache writeback is not charged to the next. The
summary shows best and median seconds, rows/s, MB/s, and persona / python throughput (> 1
means persona is faster). There are no assertions about speed: this prints figures.

Checks (outside the clock). Every table written is read back with `deltalake.DeltaTable`:
row count, distinct and min/max event_id, null customer_ids and sum(amount) must equal the
generated data, and the persona tables' Delta schema must equal the python writer's. A
mismatch or an ingest error is printed loudly and the script exits 1.

Setup. --work (default /var/tmp/persona-bench/ingest, refused inside the repository) gets a
persona.toml (data_dir "d", a one-row configured table `seed` so persona does not build its
embedded lakehouse, [ingest] batch_rows, an [access] user with write access); previous output
(d/, python/, seed/) is deleted first. `persona serve --listen 127.0.0.1:0` runs there for the
whole run; its stderr goes to <work>/persona.log. The binary is --persona, by default
$CARGO_TARGET_DIR/release/persona (target/release/persona without it). Python
packages: bench/requirements.txt (pyarrow, numpy, deltalake, adbc-driver-flightsql).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/persona"

USER, PASSWORD = "bench", "bench-secret"

SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()),
        ("event_type", pa.string()),
        ("url", pa.string()),
        ("amount", pa.float64()),
    ]
)

# A web shop's event mix: mostly page views and clicks, a few orders and refunds.
EVENT_TYPES = pa.array(["view", "click", "add_to_cart", "order", "refund"])
EVENT_WEIGHTS = np.array([0.55, 0.30, 0.09, 0.05, 0.01])
ORDER, REFUND = 3, 4
# The page an event happened on, by event type (the number after it is a product or order).
PAGES = pa.array(
    [
        "https://shop.example.com/p/",
        "https://shop.example.com/c/",
        "https://shop.example.com/cart/add?item=",
        "https://shop.example.com/checkout/done?order=",
        "https://shop.example.com/account/returns?order=",
    ]
)
CUSTOMERS = 2_000_000  # distinct customer ids the events are drawn from
PRODUCTS = 50_000
START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
GAP_US = 2_000  # mean microseconds between events: 10M events span about 5.6 hours


def default_binary() -> Path:
    return RELEASE


# --------------------------------------------------------------------------- data


def event_batch(seed: int, index: int, first_id: int, rows: int) -> pa.RecordBatch:
    """Events first_id .. first_id+rows-1. Each batch has its own generator seeded by
    (seed, index), so a batch does not depend on how many came before it."""
    rng = np.random.default_rng([seed, index])
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    # Rising times with up to a second of jitter, like events arriving from many browsers.
    times = int(START.timestamp()) * 1_000_000 + ids * GAP_US + rng.integers(0, 1_000_000, rows)
    kinds = rng.choice(len(EVENT_TYPES), size=rows, p=EVENT_WEIGHTS)
    customers = rng.integers(0, CUSTOMERS, rows)
    anonymous = rng.random(rows) < 0.05
    products = rng.integers(0, PRODUCTS, rows)
    # Orders are lognormal around 40 (cents kept), refunds the negative of one; others 0.
    value = np.round(rng.lognormal(mean=3.7, sigma=0.8, size=rows), 2)
    amount = np.where(kinds == ORDER, value, np.where(kinds == REFUND, -value, 0.0))

    # Strings are built with Arrow compute, not Python lists: 10M Python strings would take
    # longer to make than the writes this script times.
    customer_id = pc.binary_join_element_wise(
        "C", pc.utf8_lpad(pc.cast(pa.array(customers), pa.string()), 7, "0"), ""
    )
    customer_id = pc.if_else(pa.array(anonymous), pa.scalar(None, pa.string()), customer_id)
    kind_index = pa.array(kinds)
    url = pc.binary_join_element_wise(
        pc.take(PAGES, kind_index), pc.cast(pa.array(products), pa.string()), ""
    )
    return pa.record_batch(
        [
            pa.array(ids),
            pa.array(times, pa.timestamp("us", tz="UTC")),
            customer_id,
            pc.take(EVENT_TYPES, kind_index),
            url,
            pa.array(amount),
        ],
        schema=SCHEMA,
    )


def generate(rows: int, batch_rows: int, seed: int) -> list[pa.RecordBatch]:
    batches = []
    for index, first in enumerate(range(0, rows, batch_rows)):
        batches.append(event_batch(seed, index, first, min(batch_rows, rows - first)))
    return batches


def expected_stats(batches: list[pa.RecordBatch]) -> dict:
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    return stats(table)


def stats(table: pa.Table) -> dict:
    """What both writers' tables must agree on with the generated data."""
    minmax = pc.min_max(table["event_id"]).as_py()
    return {
        "rows": table.num_rows,
        "distinct event_id": pc.count_distinct(table["event_id"]).as_py(),
        "min event_id": minmax["min"],
        "max event_id": minmax["max"],
        "null customer_id": table["customer_id"].null_count,
        "sum amount": pc.sum(table["amount"]).as_py(),
    }


def reader(batches: list[pa.RecordBatch]) -> pa.RecordBatchReader:
    # A reader, not a Table: both writers consume a stream, batch by batch, as a loader would.
    return pa.RecordBatchReader.from_batches(SCHEMA, iter(batches))


# --------------------------------------------------------------------------- persona


class Server:
    """`persona serve` on a port the OS picks (tests/clients/conftest.py does the same)."""

    def __init__(self, binary: Path, workdir: Path, timeout: float = 300.0):
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.uri = None
        self.log = open(workdir / "persona.log", "w")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Keep reading stderr for the whole run: a full pipe would block the server.
        threading.Thread(target=self._read_output, daemon=True).start()
        if not self.ready.wait(timeout) or self.uri is None:
            self.proc.kill()
            sys.exit(f"persona did not start serving:\n{self.output()}")

    def _read_output(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()
            found = re.search(r"serving Flight SQL on (grpc://\S+)", line)
            if found:
                self.uri = found.group(1)
                self.ready.set()
        self.ready.set()  # the process ended: wake the waiter, which sees no address

    def output(self, last: int = 40) -> str:
        return "".join(self.lines[-last:])

    def connect(self):
        return flight_sql.connect(
            self.uri, db_kwargs={"username": USER, "password": PASSWORD}, autocommit=True
        )

    def stop(self):
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def prepare_work(work: Path, micro_batch_rows: int) -> None:
    work.mkdir(parents=True, exist_ok=True)
    # Only what this script writes is removed, so a mistaken --work cannot lose anything else.
    for name in ("d", "python", "seed"):
        shutil.rmtree(work / name, ignore_errors=True)
    # A configured table, so persona serves it instead of building the embedded lakehouse;
    # ingested tables land in <data_dir>/lakehouse and are served as they appear.
    write_deltalake(str(work / "seed"), pa.table({"id": [1]}))
    (work / "persona.toml").write_text(
        'data_dir = "d"\n'
        "[tables]\n"
        'seed = "seed"\n'
        "[ingest]\n"
        f"batch_rows = {micro_batch_rows}\n"
        "[access]\n"
        'anonymous = "read"\n'
        "[[access.users]]\n"
        f'name = "{USER}"\n'
        f'password = "{PASSWORD}"\n'
        'access = "write"\n'
    )


def persona_single(server: Server, table: str, batches: list[pa.RecordBatch], rows: int) -> float:
    with server.connect() as conn, conn.cursor() as cur:
        data = reader(batches)
        os.sync()
        started = time.perf_counter()
        answered = cur.adbc_ingest(table, data, mode="create")
        seconds = time.perf_counter() - started
    # The driver answers the server's row count (or -1 when it does not know it).
    if answered not in (-1, rows):
        problem(f"persona answered {answered:,} rows ingested into {table}, {rows:,} were sent")
    return seconds


def persona_concurrent(
    server: Server, table: str, batches: list[pa.RecordBatch], clients: int
) -> float:
    # Contiguous shares: client k streams batches [k*n/c, (k+1)*n/c).
    shares = [batches[k * len(batches) // clients : (k + 1) * len(batches) // clients] for k in range(clients)]
    conns = [server.connect() for _ in range(clients)]
    # All clients start together; the timeout keeps a client that died early from hanging us.
    start = threading.Barrier(clients + 1, timeout=120)
    errors: list[str] = []
    answers: list[int] = [0] * clients

    def run(k: int):
        data = reader(shares[k])
        with conns[k].cursor() as cur:
            start.wait()
            try:
                answers[k] = cur.adbc_ingest(table, data, mode="create_append")
            except Exception as e:  # noqa: BLE001 - reported with the server's log below
                errors.append(f"client {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    os.sync()
    start.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    for c in conns:
        c.close()
    if errors:
        fail(server, f"concurrent ingest into {table} failed:\n  " + "\n  ".join(errors))
    for k, answered in enumerate(answers):
        sent = sum(b.num_rows for b in shares[k])
        if answered not in (-1, sent):
            problem(f"persona answered {answered:,} rows to client {k} ({table}), it sent {sent:,}")
    return seconds


# --------------------------------------------------------------------------- python writer


def python_write(path: Path, batches: list[pa.RecordBatch]) -> float:
    data = reader(batches)
    os.sync()
    started = time.perf_counter()
    write_deltalake(str(path), data, mode="overwrite")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- checks

PROBLEMS: list[str] = []


def problem(message: str) -> None:
    PROBLEMS.append(message)
    print(f"\n!!!!! MISMATCH: {message}\n", file=sys.stderr, flush=True)


def fail(server: Server | None, message: str) -> None:
    print(f"\n!!!!! {message}", file=sys.stderr)
    if server is not None:
        print(f"--- last lines of persona's stderr ---\n{server.output()}", file=sys.stderr)
        server.stop()
    sys.exit(1)


def verify(label: str, path: Path, expected: dict) -> DeltaTable | None:
    try:
        table = DeltaTable(str(path))
    except Exception as e:  # noqa: BLE001 - e.g. the ingest answered but committed nothing
        problem(f"{label}: no Delta table at {path}: {type(e).__name__}: {e}")
        return None
    got = stats(table.to_pyarrow_table(columns=["event_id", "customer_id", "amount"]))
    for key, want in expected.items():
        have = got[key]
        # Sums of floats depend on the order they are added in: compare them loosely.
        same = math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-6) if key == "sum amount" else have == want
        if not same:
            problem(f"{label} ({path}): {key} is {have!r}, the generated data has {want!r}")
    return table


def delta_schema(table: DeltaTable) -> list[tuple[str, str, bool]]:
    return [(f.name, str(f.type), f.nullable) for f in table.schema().fields]


def compare_schemas(label: str, persona: DeltaTable | None, python: DeltaTable | None) -> None:
    if persona is None or python is None:
        return
    ours, theirs = delta_schema(persona), delta_schema(python)
    if ours != theirs:
        problem(f"{label}: Delta schema differs from the python writer's:\n  persona {ours}\n  python  {theirs}")


def table_shape(table: DeltaTable | None) -> str:
    if table is None:
        return "missing"
    return f"version {table.version()}, {len(table.file_uris())} files"


# --------------------------------------------------------------------------- report


def line(label: str, seconds: float, rows: int, nbytes: int) -> str:
    return f"{label:<22} {seconds:8.2f} s {rows / seconds:14,.0f} rows/s {nbytes / seconds / 1e6:9.1f} MB/s"


def summary(results: dict[str, list[float]], rows: int, nbytes: int) -> None:
    print(f"\n{rows:,} rows, {nbytes / 1e6:,.1f} MB of Arrow; {len(results['python'])} repeat(s)")
    print(f"{'':<22} {'best s':>8} {'median s':>9} {'best rows/s':>14} {'median rows/s':>14} "
          f"{'best MB/s':>10} {'median MB/s':>12}")
    for label, times in results.items():
        best, median = min(times), statistics.median(times)
        print(f"{label:<22} {best:8.2f} {median:9.2f} {rows / best:14,.0f} {rows / median:14,.0f} "
              f"{nbytes / best / 1e6:10.1f} {nbytes / median / 1e6:12.1f}")
    python = results["python"]
    for label, times in results.items():
        if label == "python":
            continue
        # Throughput ratio = python's time / persona's time: > 1 means persona is faster.
        print(f"{label} / python throughput: best {min(python) / min(times):.2f}x, "
              f"median {statistics.median(python) / statistics.median(times):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--batch-rows", type=int, default=100_000, help="rows per Arrow record batch sent")
    ap.add_argument("--micro-batch-rows", type=int, default=1_000_000, help="persona's [ingest] batch_rows")
    ap.add_argument("--clients", type=int, default=2, help="clients of the concurrent variant (0: skip it)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/persona-bench/ingest"))
    ap.add_argument("--persona", type=Path, default=default_binary())
    args = ap.parse_args()

    work = args.work.resolve()
    if work == ROOT or ROOT in work.parents:
        sys.exit(f"--work {work} is inside the repository; pick a folder outside it")
    binary = args.persona.resolve()
    if not binary.exists():
        sys.exit(f"no persona binary at {binary}: cargo build --release, or pass --persona")
    print(f"persona binary: {binary}")
    if "debug" in binary.parts:
        print("  (a debug build: its figures say nothing about persona's speed)")

    started = time.perf_counter()
    batches = generate(args.rows, args.batch_rows, args.seed)
    nbytes = sum(b.nbytes for b in batches)
    expected = expected_stats(batches)
    print(f"generated {args.rows:,} events in {len(batches)} batches of <= {args.batch_rows:,} rows, "
          f"{nbytes / 1e6:,.1f} MB of Arrow, in {time.perf_counter() - started:.1f} s")

    prepare_work(work, args.micro_batch_rows)
    server = Server(binary, work)
    print(f"persona serving on {server.uri} in {work}")

    lakehouse = work / "d/lakehouse"
    concurrent = f"persona {args.clients} clients"
    results: dict[str, list[float]] = {"persona": [], "python": []}
    if args.clients > 0:
        results[concurrent] = []

    try:
        for r in range(1, args.repeat + 1):
            print(f"\nrepeat {r}")

            def run_persona():
                try:
                    seconds = persona_single(server, f"events_{r}", batches, args.rows)
                except Exception as e:  # noqa: BLE001 - reported with the server's log
                    fail(server, f"persona ingest into events_{r} failed: {type(e).__name__}: {e}")
                results["persona"].append(seconds)
                print(line("persona", seconds, args.rows, nbytes), flush=True)

            def run_python():
                seconds = python_write(work / f"python/events_{r}", batches)
                results["python"].append(seconds)
                print(line("python deltalake", seconds, args.rows, nbytes), flush=True)

            # Flip the order every repeat, so neither side always runs second.
            for step in (run_persona, run_python) if r % 2 else (run_python, run_persona):
                step()
            if args.clients > 0:
                seconds = persona_concurrent(server, f"events_concurrent_{r}", batches, args.clients)
                results[concurrent].append(seconds)
                print(line(concurrent, seconds, args.rows, nbytes), flush=True)

            # Checks, outside the clock.
            python_table = verify("python", work / f"python/events_{r}", expected)
            persona_table = verify("persona", lakehouse / f"events_{r}", expected)
            compare_schemas(f"persona events_{r}", persona_table, python_table)
            shapes = [f"python {table_shape(python_table)}", f"persona {table_shape(persona_table)}"]
            if args.clients > 0:
                concurrent_table = verify(concurrent, lakehouse / f"events_concurrent_{r}", expected)
                compare_schemas(f"persona events_concurrent_{r}", concurrent_table, python_table)
                shapes.append(f"{concurrent} {table_shape(concurrent_table)}")
            print("checked: " + "; ".join(shapes))
    finally:
        server.stop()

    summary(results, args.rows, nbytes)
    if PROBLEMS:
        print(f"\n!!!!! {len(PROBLEMS)} mismatch(es):\n  " + "\n  ".join(PROBLEMS), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

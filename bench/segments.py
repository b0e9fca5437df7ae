#!/usr/bin/env python3
"""The shipped segments at 10M and 50M events: persona over Flight SQL against DuckDB in-process.

    python bench/segments.py --rows 10000000          # one size
    python bench/segments.py                          # both sizes, 10M then 50M
    python bench/segments.py --rows 2000000 --persona target/debug/persona --repeat 1

Data. The embedded `events` (1,044,847 Online Retail invoice lines, built here from the two
Parquet files in data/ exactly as src/embedded.rs builds them) is copied k = 0 .. K-1 times,
K = round(rows / 1,044,847). Copy k gets customer ids + k * 100,000 (the shop's ids are below
20,000, so copies never collide), invoice numbers suffixed `-k` (the C/A prefix that makes a
refund or adjustment is kept) and every time moved back k weeks. Copy 0 is the embedded table
itself. The copies overlap in time (10M rows span 2009-09 .. 2011-12, 50M 2009-01 .. 2011-12),
so it is the same shop over about the same years with K times the customers, and what the
segments' 90/180/365-day windows hold grows with K, as it would. A whole-week shift keeps
weekdays, and a different shift for every copy gives each copy windowed sums of its own
wherever its window holds other purchases (copies shifted alike would be clones, tied on
every sum).

The table has the columns and types persona serves for the embedded `events` (event_time
timestamp UTC, event_type, customer_id, invoice_no, stock_code, description, quantity int32,
unit_price, amount, currency, country, event_month), plus the partition column `event_date`
(the UTC day, a Delta `date`). It is written with the Python `deltalake` package, one commit per
month of event_time (26 to 36 commits), so there is a log to replay, not one big commit.
`profiles` is built the same way from the FEBRL files (src/embedded.rs PROFILES_SQL), copied K
times with the same customer id shift, 10,000 * K rows, so `emailable_webshop_customers` (the
one segment that joins profiles) runs too and no shipped segment is skipped. Generated tables live under --work (never in the
repository) and are reused while their marker file says they are complete and the Delta
version has not moved; anything else is deleted and written again.

Timing. Each segment file is sent as it is, a plain query: persona over ADBC Flight SQL
(`cur.execute(sql); cur.fetch_arrow_table()`, so planning, execution, the Flight stream and the
client's decoding are all in the figure), DuckDB in this process (`con.sql(sql).to_arrow_table()`)
on views `events` / `profiles` over the very Parquet files of the Delta tables' current versions
(`DeltaTable.file_uris()`; DuckDB's delta extension cannot be downloaded here). Segments are not
run as segments (`persona segments run` would also run their required checks, the audience
rule and write the run to Delta), so the figures are the queries alone. Every query runs once
to warm up (file metadata, OS page cache), then --repeat times; the table shows the median and
the best. Both engines must return the same number of rows and the same set of keys (the
`-- key:` column, default customer_id); a difference or an error is printed loudly and makes
the script exit 1. One difference is only noted (`~~ TIE`), not failed: members swapped at a
top-N cut-off while both answers hold the same rows once the key is left out (floats to 1e-6),
where the order of a float sum decides which of two equal spenders is kept (see compare()).
There are no timing assertions: this prints figures, it tests nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
import duckdb
from deltalake import DeltaTable, write_deltalake

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT / "data"
RETAIL_2009_2010 = DATA / "online_retail_ii_2009_2010.parquet"
RETAIL_2010_2011 = DATA / "online_retail.parquet"

BASE_ROWS = 1_044_847  # rows of the embedded events table (data/README.md)
ID_SHIFT = 100_000  # customer ids of copy k: id + k * ID_SHIFT
DAYS_SHIFT = 7  # times of copy k: moved back k * DAYS_SHIFT days
# Raise when the generated data changes, so old tables under --work are rebuilt, not reused.
GENERATOR = 1

# The embedded events, as src/embedded.rs EVENTS_SQL builds them: Online Retail II before
# 2010-12-01 (the two releases overlap on 2010-12-01..09), then all of Online Retail; UK wall
# clock time read as Europe/London and kept in UTC. `customer` stays an integer here so the
# copies can shift it; it becomes the text customer_id when a copy is written.
BASE_SQL = f"""
CREATE TABLE base AS
WITH lines AS (
    SELECT "Invoice" AS invoice_no, "StockCode" AS stock_code, "Description" AS description,
           "Quantity" AS quantity, "InvoiceDate" AS local_time, "Price" AS unit_price,
           "Customer ID" AS customer, "Country" AS country
    FROM read_parquet('{RETAIL_2009_2010}')
    WHERE "InvoiceDate" < TIMESTAMP '2010-12-01 00:00:00'
    UNION ALL
    SELECT "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"
    FROM read_parquet('{RETAIL_2010_2011}')
)
SELECT timezone('Europe/London', local_time) AS event_time,
       CASE WHEN starts_with(invoice_no, 'C') THEN 'refund'
            WHEN starts_with(invoice_no, 'A') THEN 'adjustment'
            ELSE 'purchase' END AS event_type,
       customer, invoice_no, stock_code, description,
       quantity, unit_price,
       CAST(quantity AS DOUBLE) * unit_price AS amount,
       'GBP' AS currency,
       country
FROM lines
ORDER BY event_time, invoice_no
"""

# The copies of one month of (shifted) event_time: the base rows whose shifted time falls in
# [{start}, {end}). The base is sorted by time, so each copy's range reads a slice of it. Rows
# are sorted by time like the embedded table, so Parquet row groups have tight time ranges.
MONTH_SQL = """
SELECT b.event_time - c.shift AS event_time,
       b.event_type,
       CAST(b.customer + c.k * {id_shift} AS VARCHAR) AS customer_id,
       CASE WHEN c.k = 0 THEN b.invoice_no ELSE b.invoice_no || '-' || c.k END AS invoice_no,
       b.stock_code, b.description, b.quantity, b.unit_price, b.amount, b.currency, b.country,
       strftime(b.event_time - c.shift, '%Y-%m') AS event_month,
       CAST(b.event_time - c.shift AS DATE) AS event_date
FROM base b
JOIN copies c
  ON b.event_time >= TIMESTAMPTZ '{start}' + c.shift
 AND b.event_time < TIMESTAMPTZ '{end}' + c.shift
ORDER BY event_time, invoice_no
"""

# The embedded profiles (src/embedded.rs PROFILES_SQL), once per copy: FEBRL entity N is the
# N-th Online Retail customer id in numeric order (here plus k * ID_SHIFT, as in the events of
# copy k); point-of-sale ids get a `-k` suffix so they stay unique.
PROFILES_SQL = f"""
WITH src AS (
    SELECT 'webshop' AS source, * FROM read_csv('{DATA / "febrl4a.csv"}', header = true, all_varchar = true)
    UNION ALL
    SELECT 'pos' AS source, * FROM read_csv('{DATA / "febrl4b.csv"}', header = true, all_varchar = true)
), numbered AS (
    SELECT *, CAST(regexp_extract(rec_id, '^rec-([0-9]+)-', 1) AS BIGINT) AS entity FROM src
), customers AS (
    SELECT customer, row_number() OVER (ORDER BY customer) - 1 AS entity
    FROM (
        SELECT DISTINCT "Customer ID" AS customer FROM read_parquet('{RETAIL_2009_2010}') WHERE "Customer ID" IS NOT NULL
        UNION
        SELECT DISTINCT "CustomerID" FROM read_parquet('{RETAIL_2010_2011}') WHERE "CustomerID" IS NOT NULL
    )
)
SELECT n.source,
       CASE WHEN n.source = 'webshop' THEN CAST(c.customer + k.k * {ID_SHIFT} AS VARCHAR)
            ELSE 'POS-' || lpad(CAST((n.entity * 7919 + 1237) % 100003 AS VARCHAR), 6, '0')
                 || CASE WHEN k.k = 0 THEN '' ELSE '-' || k.k END END
           AS source_customer_id,
       n.given_name, n.surname,
       CASE WHEN n.given_name IS NULL AND n.surname IS NULL THEN NULL
            ELSE replace(lower(concat_ws('.', n.given_name, n.surname)), ' ', '') || '@' ||
                 CASE n.entity % 5 WHEN 0 THEN 'gmail.com' WHEN 1 THEN 'yahoo.co.uk'
                                   WHEN 2 THEN 'hotmail.com' WHEN 3 THEN 'outlook.com'
                                   ELSE 'btinternet.com' END
       END AS email,
       n.street_number, n.address_1, n.address_2, n.suburb, n.postcode, n.state,
       n.date_of_birth, n.soc_sec_id,
       CASE WHEN n.source = 'webshop' THEN n.entity % 10 <> 3 ELSE n.entity % 7 <> 2 END AS consent_email,
       to_timestamp(CASE WHEN n.source = 'webshop'
                         THEN 1323432000 - (n.entity % 700) * 86400
                         ELSE 1322730000 - ((n.entity * 13) % 500) * 86400 END) AS updated_at
FROM numbered n
CROSS JOIN copies k
LEFT JOIN customers c ON c.entity = n.entity
ORDER BY n.source, source_customer_id
"""

EVENTS_COLUMNS = ("event_time, event_type, customer_id, invoice_no, stock_code, description, quantity, "
                  "unit_price, amount, currency, country, event_month, CAST(event_date AS DATE) AS event_date")
PROFILES_COLUMNS = ("source, source_customer_id, given_name, surname, email, street_number, address_1, "
                    "address_2, suburb, postcode, state, date_of_birth, soc_sec_id, consent_email, updated_at")


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Times are UTC on both sides: casts to DATE, strftime and interval arithmetic on
    # TIMESTAMPTZ follow the session zone.
    con.execute("SET TimeZone = 'UTC'")
    # No progress bar in the output (or in the timings).
    con.execute("SET enable_progress_bar = false")
    return con


def month_starts(first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    """First instants (UTC) of every month from first's month to the month after last's."""
    month = dt.datetime(first.year, first.month, 1, tzinfo=dt.timezone.utc)
    out = [month]
    while month <= last:
        month = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=dt.timezone.utc)
        out.append(month)
    return out


def generate(folder: Path, copies: int) -> dict:
    """Writes folder/events and folder/profiles as Delta; returns what the marker records."""
    started = time.perf_counter()
    con = duck()
    con.execute(BASE_SQL)
    con.execute(f"CREATE TABLE copies AS SELECT range AS k, to_days(CAST(range * {DAYS_SHIFT} AS INTEGER)) AS shift "
                f"FROM range({copies})")
    base_rows, first, last = con.sql("SELECT count(*), min(event_time), max(event_time) FROM base").fetchall()[0]
    if base_rows != BASE_ROWS:
        sys.exit(f"the base events have {base_rows:,} rows, the embedded table {BASE_ROWS:,}: data/ changed?")
    first -= dt.timedelta(days=DAYS_SHIFT * (copies - 1))
    months = month_starts(first, last)

    events = folder / "events"
    rows = 0
    for i, (start, end) in enumerate(zip(months, months[1:])):
        sql = MONTH_SQL.format(id_shift=ID_SHIFT, start=start.isoformat(), end=end.isoformat())
        batch = con.sql(sql).to_arrow_table()
        # One commit per month, each adding one file per day of that month.
        write_deltalake(str(events), batch, partition_by=["event_date"], mode="append" if i else "error",
                        name="events" if not i else None)
        rows += batch.num_rows
        print(f"  events {start:%Y-%m}: {batch.num_rows:>10,} rows, commit {i + 1}/{len(months) - 1}, "
              f"{rows:,} so far, {time.perf_counter() - started:.0f} s", flush=True)

    profiles = con.sql(PROFILES_SQL).to_arrow_table()
    write_deltalake(str(folder / "profiles"), profiles, partition_by=["source"], mode="error", name="profiles")
    print(f"  profiles: {profiles.num_rows:,} rows; generated in {time.perf_counter() - started:.0f} s", flush=True)
    return {
        "generator": GENERATOR,
        "copies": copies,
        "events_rows": rows,
        "events_version": DeltaTable(str(events)).version(),
        "profiles_rows": profiles.num_rows,
        "profiles_version": DeltaTable(str(folder / "profiles")).version(),
    }


def dataset(work: Path, copies: int) -> tuple[Path, dict]:
    """The generated tables for this many copies, reused when the marker says they are complete."""
    folder = work / f"events-x{copies}"
    marker = folder / "complete.json"
    try:
        done = json.loads(marker.read_text())
        # A marker from another generator, or a table someone wrote to since, is not reused.
        if (done["generator"] == GENERATOR and done["copies"] == copies
                and DeltaTable(str(folder / "events")).version() == done["events_version"]
                and DeltaTable(str(folder / "profiles")).version() == done["profiles_version"]):
            print(f"reusing {folder} ({done['events_rows']:,} events)", flush=True)
            return folder, done
    except Exception:  # noqa: BLE001 - no marker, a broken one, or a table gone: generate again
        pass
    # Not complete: a run stopped half-way, an older generator, or never generated. Start afresh.
    if folder.exists():
        print(f"removing incomplete {folder}", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print(f"generating {copies} copies of the events into {folder}", flush=True)
    done = generate(folder, copies)
    marker.write_text(json.dumps(done, indent=2) + "\n")
    return folder, done


class Persona:
    """`persona serve` on a port the OS picks (see tests/clients/conftest.py)."""

    def __init__(self, binary: Path, config: Path, log: Path, timeout: float = 600.0):
        self.log = open(log, "w")
        self.ready = threading.Event()
        self.uri = None
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--config", str(config)],
            cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.reader = threading.Thread(target=self._read_output, daemon=True)
        self.reader.start()
        if not self.ready.wait(timeout) or self.uri is None:
            self.stop()
            sys.exit(f"persona did not start serving; see {log}:\n{log.read_text()[-3000:]}")

    def _read_output(self):
        for line in self.proc.stderr:
            self.log.write(line)
            self.log.flush()
            found = re.search(r"serving Flight SQL on (grpc://\S+)", line)
            if found:
                self.uri = found.group(1)
                self.ready.set()
        self.ready.set()  # the process ended: wake the waiter, which sees no address

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)  # the rest of its output, then the log is complete
        self.log.close()


def segment_key(sql: str) -> str:
    """The `-- key:` header of a segment file (default customer_id)."""
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        found = re.match(r"--\s*key:\s*(\S+)", line)
        if found:
            return found.group(1)
    return "customer_id"


def timed(run, sql: str, repeat: int):
    """run(sql) once to warm up, then `repeat` timed times; returns (last result, seconds per run)."""
    result = run(sql)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = run(sql)
        seconds.append(time.perf_counter() - started)
    return result, seconds


def compare(ours, theirs, key: str) -> tuple[str | None, str]:
    """(None, "") when both answers hold the same members; ("tie", why) when the members differ
    but the answers hold the same rows once the key is left out (floats to 1e-6); else
    ("mismatch", why).

    A tie: a top-N segment (`ORDER BY spend DESC, customer_id LIMIT 100`, or `row_number()`
    per country) whose N-th and (N+1)-th customers spent the same. Summing the same doubles in
    another order moves the last bit (5709.07 against 5709.070000000001), so an engine may
    keep either one, even from run to run; the customer_id tie-break cannot help. Rank columns
    then differ per member too, which is why whole answers are compared, not member by member.
    The replicated data has such ties: one customer in several copies whose windows hold the
    same purchases.
    """
    ours_keys = set(ours.column(key).to_pylist())
    theirs_keys = set(theirs.column(key).to_pylist())
    if ours.num_rows == theirs.num_rows and ours_keys == theirs_keys:
        return None, ""
    only_ours = sorted(ours_keys - theirs_keys, key=str)
    only_theirs = sorted(theirs_keys - ours_keys, key=str)
    why = (f"persona {ours.num_rows:,} rows, duckdb {theirs.num_rows:,}; {key} only in persona "
           f"{only_ours[:5]}{' ...' if len(only_ours) > 5 else ''}, only in duckdb "
           f"{only_theirs[:5]}{' ...' if len(only_theirs) > 5 else ''}")

    def rows_without_key(table):  # floats to 1e-6 (+ 0.0 turns -0.0 into 0.0), in a fixed order
        rows = [tuple((c, round(v, 6) + 0.0 if isinstance(v, float) else v) for c, v in sorted(r.items()) if c != key)
                for r in table.to_pylist()]
        return sorted(rows, key=repr)

    tied = ours.num_rows == theirs.num_rows and rows_without_key(ours) == rows_without_key(theirs)
    return ("tie" if tied else "mismatch"), why


def compare_schemas(cur, con, table: str) -> list[str]:
    """Differences between the columns persona serves and DuckDB's view of the same files."""
    cur.execute(f"SELECT * FROM {table} LIMIT 0")
    ours = cur.fetch_arrow_table().schema
    theirs = con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    ours_cols = [(f.name, str(f.type)) for f in ours]
    theirs_cols = [(f.name, str(f.type)) for f in theirs]
    if ours_cols == theirs_cols:
        return []
    return [f"{table}: persona {ours_cols}", f"{table}: duckdb  {theirs_cols}"]


def bench_size(args, copies: int) -> tuple[dict, list[dict], list[str], list[str]]:
    """Generates (or reuses) one size and times every segment on it: (marker, rows, problems, notes)."""
    folder, done = dataset(args.work, copies)
    problems: list[str] = []
    notes: list[str] = []

    # persona: the generated tables, and the segment files (sql_dir is needed to start; the
    # segments are sent as plain queries below, so their checks and audience rule do not run).
    config = folder / "persona.toml"
    config.write_text(
        "# Written by bench/segments.py.\n"
        f"sql_dir = {json.dumps(str(args.sql_dir))}\n"
        'data_dir = ".persona"\n'
        "[tables]\n"
        f"events = {json.dumps(str(folder / 'events'))}\n"
        f"profiles = {json.dumps(str(folder / 'profiles'))}\n"
    )

    # DuckDB: the same Parquet files, the Delta tables' current versions, with the partition
    # column read from the paths (`event_date=2011-12-09/part-...parquet`).
    con = duck()
    for table, columns in (("events", EVENTS_COLUMNS), ("profiles", PROFILES_COLUMNS)):
        files = DeltaTable(str(folder / table)).file_uris()
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW {table} AS SELECT {columns} FROM read_parquet([{listed}], hive_partitioning = true)")
        print(f"  {table}: {len(files):,} Parquet files", flush=True)

    server = Persona(args.persona, config, folder / "persona.log")
    results = []
    try:
        with flight_sql.connect(server.uri, autocommit=True) as conn, conn.cursor() as cur:
            for table in ("events", "profiles"):
                diff = compare_schemas(cur, con, table)
                if diff:
                    problems.append(f"x{copies}: the engines see different columns:\n    " + "\n    ".join(diff))
                    print("!! SCHEMA MISMATCH\n    " + "\n    ".join(diff), flush=True)

            def persona_run(sql):
                cur.execute(sql)
                return cur.fetch_arrow_table()

            for path in sorted((args.sql_dir / "segments").glob("*.sql")):
                sql = path.read_text()
                name, key = path.stem, segment_key(sql)
                row = {"segment": name}
                for engine, run in (("persona", persona_run), ("duckdb", lambda s: con.sql(s).to_arrow_table())):
                    try:
                        row[engine], row[engine + "_s"] = timed(run, sql, args.repeat)
                    except Exception as e:  # noqa: BLE001 - any failure is reported, the others still run
                        row[engine] = None
                        message = str(e).strip().splitlines()[0][:300]
                        problems.append(f"x{copies} {name}: {engine} failed: {message}")
                        print(f"!! {name}: {engine} FAILED: {message}", flush=True)
                ours, theirs = row["persona"], row["duckdb"]
                if ours is not None and theirs is not None:
                    kind, message = compare(ours, theirs, key)
                    if kind == "mismatch":
                        problems.append(f"x{copies} {name}: {message}")
                        print(f"!! {name}: MISMATCH {message}", flush=True)
                    elif kind == "tie":
                        notes.append(f"x{copies} {name}: {message}")
                        print(f"~~ {name}: TIE AT THE CUT-OFF {message}", flush=True)
                answer = ours if ours is not None else theirs
                row["rows"] = answer.num_rows if answer is not None else None
                results.append(row)
                print(f"  {name}: done", flush=True)
    finally:
        server.stop()
    return done, results, problems, notes


def report(done: dict, results: list[dict], repeat: int) -> None:
    print(f"\n{done['events_rows']:,} events ({done['copies']} copies), {done['profiles_rows']:,} profiles; "
          f"seconds per query, median (best) of {repeat} after one warm-up")
    print(f"{'segment':<28} {'rows':>9} {'persona s':>16} {'duckdb s':>16} {'persona/duckdb':>15}")

    def cell(seconds):
        return f"{statistics.median(seconds):7.3f} ({min(seconds):6.3f})" if seconds else f"{'failed':>16}"

    for r in results:
        ours, theirs = r.get("persona_s"), r.get("duckdb_s")
        ratio = f"{statistics.median(ours) / statistics.median(theirs):15.2f}" if ours and theirs else f"{'-':>15}"
        rows = f"{r['rows']:,}" if r["rows"] is not None else "-"
        print(f"{r['segment']:<28} {rows:>9} {cell(ours):>16} {cell(theirs):>16} {ratio}")


def default_persona() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "persona"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 50_000_000],
                    help="event rows to aim for, one or more sizes (default: 10000000 50000000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per query after the warm-up")
    ap.add_argument("--persona", type=Path, default=default_persona())
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/persona-bench/segments"))
    ap.add_argument("--sql-dir", type=Path, default=ROOT / "sql", help="holds segments/*.sql")
    args = ap.parse_args()
    args.persona = args.persona.resolve()
    args.work = args.work.resolve()
    args.sql_dir = args.sql_dir.resolve()
    if args.repeat < 1:
        sys.exit("--repeat must be at least 1")
    if not args.persona.exists():
        sys.exit(f"{args.persona} not found: build it with `cargo build --release` or pass --persona")
    if args.work == ROOT or ROOT in args.work.parents:
        sys.exit(f"--work {args.work} is inside the repository: generated tables belong elsewhere")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"persona {args.persona}, duckdb {duckdb.__version__}, {os.cpu_count()} cores", flush=True)

    sizes, problems, notes = [], [], []
    for rows in args.rows:
        copies = max(1, round(rows / BASE_ROWS))
        done, results, found, noted = bench_size(args, copies)
        report(done, results, args.repeat)
        sizes.append((done, results))
        problems += found
        notes += noted

    if len(sizes) > 1:  # every size again, together, so the figures can be read side by side
        for done, results in sizes:
            report(done, results, args.repeat)
    if notes:
        print("\n~~ members that differ only by equal values (ties at a cut-off, see compare()):",
              *notes, sep="\n~~ ")
    if problems:
        print("\n!! THE ENGINES DISAGREE OR FAILED:", *problems, sep="\n!! ")
        sys.exit(1)
    print("\nboth engines returned the same members for every segment" + (" but for the ties above" if notes else ""))


if __name__ == "__main__":
    main()

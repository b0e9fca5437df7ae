"""Loading and reading the past as a user does it: `persona load` on the command line, then
time travel and `table_changes` over Flight SQL through ADBC.

Expected versions, timestamps and change rows are read independently with the Python
`deltalake` package from the same Delta table.
"""

import csv
import subprocess
from datetime import datetime, timedelta, timezone

import adbc_driver_manager
import pytest
from deltalake import DeltaTable

from conftest import Server, persona_binary


def persona(*args, cwd):
    out = subprocess.run([persona_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def query(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A data folder with `orders` at versions 0 (3 rows), 1 (+2 rows) and 2 (one row updated
    by a merge), served by `persona serve`."""
    work = tmp_path_factory.mktemp("loading")
    (work / "v0.csv").write_text("order_id,customer_id,amount\n1,c1,10.5\n2,c2,20\n3,c3,30\n")
    (work / "v1.csv").write_text("order_id,customer_id,amount\n4,c4,40\n5,c2,50\n")
    (work / "v2.csv").write_text("order_id,customer_id,amount\n1,c1,11\n")
    first = persona("load", "orders", "v0.csv", "--data-dir", "d", cwd=work)
    assert "loaded 3 rows" in first and "version 0" in first
    assert "nothing new to load" in persona("load", "orders", "v0.csv", "--data-dir", "d", cwd=work)
    assert "version 1" in persona("load", "orders", "v0.csv", "v1.csv", "--data-dir", "d", cwd=work)
    merged = persona("load", "orders", "v2.csv", "--mode", "merge", "--key", "order_id", "--data-dir", "d", cwd=work)
    assert "version 2" in merged and "1 existing row updated" in merged
    (work / "persona.toml").write_text('data_dir = "d"\n[tables]\norders = "d/lakehouse/orders"\n')
    server = Server(work)
    yield work, server
    server.stop()


def test_time_travel_by_version_and_timestamp(lake):
    work, server = lake
    delta = DeltaTable(str(work / "d/lakehouse/orders"))
    assert delta.version() == 2
    history = {h["version"]: h["timestamp"] for h in delta.history()}
    with server.connect() as conn:
        for version, rows in [(0, 3), (1, 5), (2, 5)]:
            got = query(conn, f"SELECT count(*) AS n FROM orders VERSION AS OF {version}")["n"][0].as_py()
            assert got == rows, version
        assert query(conn, "SELECT amount FROM orders VERSION AS OF 1 WHERE order_id = 1")["amount"][0].as_py() == 10.5
        assert query(conn, "SELECT amount FROM orders WHERE order_id = 1")["amount"][0].as_py() == 11
        # A version's time is when its log file was written (as delta-rs and Spark read it), a
        # few ms after the writer's own commitInfo timestamp: at that time, version 1 is there.
        written_ns = (work / "d/lakehouse/orders/_delta_log/00000000000000000001.json").stat().st_mtime_ns
        at = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=-(-written_ns // 1000))).isoformat()
        got = query(conn, f"SELECT count(*) AS n FROM orders TIMESTAMP AS OF '{at}'")["n"][0].as_py()
        assert got == 5
        # Just before the first commit there was no table.
        before = datetime.fromtimestamp(min(history.values()) / 1000 - 60, tz=timezone.utc).isoformat()
        with pytest.raises(adbc_driver_manager.Error) as early:
            query(conn, f"SELECT count(*) AS n FROM orders TIMESTAMP AS OF '{before}'")
        assert "did not exist" in str(early.value)
        with pytest.raises(adbc_driver_manager.Error) as missing:
            query(conn, "SELECT * FROM orders VERSION AS OF 99")
        assert "0 to 2" in str(missing.value)


def test_table_changes_match_the_delta_change_feed(lake):
    work, server = lake
    expected = DeltaTable(str(work / "d/lakehouse/orders")).load_cdf(starting_version=1).read_all()
    want = sorted(zip(*(expected[c].to_pylist() for c in ["_change_type", "order_id", "amount", "_commit_version"])))
    with server.connect() as conn:
        got = query(conn, "SELECT _change_type, order_id, amount, _commit_version FROM table_changes('orders', 1)")
    assert sorted(zip(*(got[c].to_pylist() for c in got.column_names))) == want
    assert ("update_postimage", 1, 11.0, 2) in want and ("insert", 5, 50.0, 1) in want


def test_rejects_tables_listing_new_tables_and_forget(lake):
    work, server = lake
    (work / "clicks.csv").write_text("click_id,customer_id,url\n1,c2,/a\n2,c9,/b\nnot,enough\n")
    out = persona("load", "clicks", "clicks.csv", "--data-dir", "d", cwd=work)
    assert "loaded 2 rows" in out and "1 rejected" in out
    rejects = out.split("rejected records: ")[1].split(" (")[0]
    with open(rejects, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["reason"]) for r in rows] == [("4", "expected 3 fields, found 2")]

    listing = persona("tables", "--data-dir", "d", cwd=work)
    lines = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert lines["orders"][1] == "2" and lines["clicks"][1] == "0"
    assert "persona.load_watermarks" in lines

    with server.connect() as conn:
        # Created after the server started, served without a restart.
        assert query(conn, "SELECT count(*) AS n FROM clicks")["n"][0].as_py() == 2
        forgotten = persona("forget", "--key", "customer_id=c2", "--data-dir", "d", cwd=work)
        assert forgotten.strip().endswith("forgotten everywhere"), forgotten
        assert query(conn, "SELECT count(*) AS n FROM orders WHERE customer_id = 'c2'")["n"][0].as_py() == 0
        assert query(conn, "SELECT count(*) AS n FROM clicks")["n"][0].as_py() == 1

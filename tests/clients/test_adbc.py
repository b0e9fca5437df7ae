"""The main job as a user sees it: `persona serve` on the embedded data, used through ADBC.

Expected values are computed independently with DuckDB on the raw Online Retail Parquet files
that persona's embedded `events` table is built from (data/, copies of the shared data set).
"""

from pathlib import Path

import adbc_driver_manager
import duckdb
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from conftest import REPO, Server

RETAIL = REPO / "data"


def raw_events() -> duckdb.DuckDBPyConnection:
    """The two-year stream built from the raw files by the data set's overlap rule, in UTC."""
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute(
        f"""
        CREATE VIEW events AS
        SELECT timezone('Europe/London', "InvoiceDate") AS event_time,
               CAST("Customer ID" AS VARCHAR) AS customer_id, "Invoice" AS invoice_no,
               "Quantity" * "Price" AS amount
        FROM '{RETAIL / "online_retail_ii_2009_2010.parquet"}' WHERE "InvoiceDate" < TIMESTAMP '2010-12-01'
        UNION ALL
        SELECT timezone('Europe/London', "InvoiceDate"), CAST("CustomerID" AS VARCHAR), "InvoiceNo",
               "Quantity" * "UnitPrice"
        FROM '{RETAIL / "online_retail.parquet"}'
        """
    )
    return db


def query(conn, sql, parameters=None) -> pa.Table:
    with conn.cursor() as cur:
        cur.execute(sql, parameters)
        return cur.fetch_arrow_table()


def test_get_objects_lists_the_lakehouse(conn):
    objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
    catalogs = {c["catalog_name"]: c for c in objects}
    assert "persona" in catalogs
    schemas = {s["db_schema_name"]: s for s in catalogs["persona"]["catalog_db_schemas"]}
    tables = {t["table_name"]: t for t in schemas["public"]["db_schema_tables"]}
    assert {"events", "profiles"} <= set(tables)
    columns = [c["column_name"] for c in tables["events"]["table_columns"]]
    assert {"event_time", "customer_id", "amount", "event_month"} <= set(columns)


def test_row_counts_match_the_raw_files(conn):
    assert query(conn, "SELECT count(*) AS n FROM events")["n"][0].as_py() == 1_044_847
    assert query(conn, "SELECT count(*) AS n FROM profiles")["n"][0].as_py() == 10_000


def test_top_spenders_segment_matches_duckdb(conn):
    sql = (REPO / "sql" / "segments" / "top_spenders_90d.sql").read_text()
    ours = query(conn, sql)
    assert ours.schema.field("customer_id").type == pa.string()
    expected = raw_events().execute(
        """
        WITH b AS (SELECT max(event_time) AS latest FROM events)
        SELECT customer_id, sum(amount) AS spend, count(DISTINCT invoice_no) AS invoices
        FROM events, b
        WHERE customer_id IS NOT NULL AND event_time > latest - INTERVAL 90 DAY
        GROUP BY customer_id ORDER BY spend DESC, customer_id LIMIT 100
        """
    ).fetchall()
    got = list(zip(ours["customer_id"].to_pylist(), ours["spend_90d"].to_pylist(), ours["invoices_90d"].to_pylist()))
    assert [r[0] for r in got] == [r[0] for r in expected]
    for (_, spend, invoices), (_, want_spend, want_invoices) in zip(got, expected):
        assert spend == pytest.approx(want_spend, abs=0.005)
        assert invoices == want_invoices


def test_prepared_statement_with_bound_parameter(conn):
    want = raw_events().execute("SELECT count(*), sum(amount) FROM events WHERE customer_id = '17850'").fetchone()
    got = query(conn, "SELECT count(*) AS n, sum(amount) AS spend FROM events WHERE customer_id = ?", ("17850",))
    assert got["n"][0].as_py() == want[0]
    assert got["spend"][0].as_py() == pytest.approx(want[1], abs=0.005)
    # The same statement with another value gets its own rows.
    other = raw_events().execute("SELECT count(*) FROM events WHERE customer_id = '13085'").fetchone()[0]
    assert query(conn, "SELECT count(*) AS n FROM events WHERE customer_id = ?", ("13085",))["n"][0].as_py() == other


def test_empty_result_keeps_its_schema(conn):
    table = query(conn, "SELECT customer_id, amount, event_time FROM events WHERE customer_id = 'nobody'")
    assert table.num_rows == 0
    assert table.schema.names == ["customer_id", "amount", "event_time"]
    assert table.schema.field("customer_id").type == pa.string()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("event_time").type == pa.timestamp("us", tz="UTC")


def test_strings_and_partitions_arrive_as_plain_utf8(conn):
    table = query(conn, "SELECT p.source, p.email, e.event_month FROM profiles p JOIN events e ON e.customer_id = p.source_customer_id LIMIT 3")
    assert table.num_rows == 3
    for field in table.schema:
        assert field.type == pa.string(), field


def test_every_shipped_segment_is_a_plain_query(conn):
    # A segment file is ordinary SQL any client can run; test_segments.py runs them as segments.
    for path in sorted((REPO / "sql/segments").glob("*.sql")):
        assert query(conn, path.read_text()).num_rows > 0, f"{path.name} selects nobody"


def test_errors_are_clear(conn):
    with pytest.raises(adbc_driver_manager.Error) as bad_sql:
        query(conn, "SELEC 1")
    assert "SELEC" in str(bad_sql.value)
    with pytest.raises(adbc_driver_manager.Error) as missing:
        query(conn, "SELECT * FROM no_such_table")
    assert "no_such_table" in str(missing.value)
    with pytest.raises(adbc_driver_manager.Error) as refused:
        query(conn, "COPY (SELECT 1) TO '/tmp/persona-should-not-exist.csv'")
    assert "not allowed" in str(refused.value)
    assert not Path("/tmp/persona-should-not-exist.csv").exists()
    with pytest.raises(adbc_driver_manager.Error) as by_path:
        query(conn, "SELECT * FROM '/etc/hostname'")
    assert "not allowed" in str(by_path.value)


def test_rows_appended_by_python_deltalake_are_seen_without_restart(tmp_path):
    table_dir = tmp_path / "signups"
    write_deltalake(str(table_dir), pa.table({"id": [1, 2, 3], "email": ["a@x.io", "b@x.io", "c@x.io"]}))
    config = tmp_path / "persona.toml"
    config.write_text(f'[tables]\nsignups = "{table_dir}"\n')
    server = Server(tmp_path, "--config", str(config))
    try:
        with server.connect() as conn:
            assert query(conn, "SELECT count(*) AS n FROM signups")["n"][0].as_py() == 3
            write_deltalake(str(table_dir), pa.table({"id": [4, 5], "email": ["d@x.io", None]}), mode="append")
            got = query(conn, "SELECT count(*) AS n, sum(id) AS s FROM signups")
            assert (got["n"][0].as_py(), got["s"][0].as_py()) == (5, 15)
    finally:
        server.stop()


def test_events_join_golden_customer_records(conn):
    sql = """
        SELECT c.master_customer_id, c.email, c.profile_count, sum(e.amount) AS spend
        FROM events e
        JOIN persona.identity_links l ON l.source = 'webshop' AND l.source_customer_id = e.customer_id
        JOIN persona.customers c ON c.master_customer_id = l.master_customer_id
        GROUP BY 1, 2, 3 ORDER BY spend DESC, 1 LIMIT 5
    """
    top = query(conn, sql)
    assert top.num_rows == 5
    assert all(m.startswith("M") for m in top["master_customer_id"].to_pylist())
    # The biggest spender's total equals DuckDB's for the web-shop customer behind that record.
    master = top["master_customer_id"][0].as_py()
    ids = query(conn, f"SELECT source_customer_id FROM persona.identity_links WHERE source = 'webshop' AND master_customer_id = '{master}'")
    customer_ids = ", ".join(f"'{c}'" for c in ids["source_customer_id"].to_pylist())
    want = raw_events().execute(f"SELECT sum(amount) FROM events WHERE customer_id IN ({customer_ids})").fetchone()[0]
    assert top["spend"][0].as_py() == pytest.approx(want, abs=0.01)

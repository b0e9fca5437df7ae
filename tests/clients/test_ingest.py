"""Streaming appends and DML as Python clients send them: ADBC's `adbc_ingest` (Flight SQL bulk
ingest) from one connection while another queries the table, a retried batch, and INSERT /
UPDATE / DELETE / MERGE through `cursor.execute`.

Expected rows come from the Arrow data the test sends (pyarrow compute) and from the Python
`deltalake` reader looking at the same Delta table.
"""

import threading

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import Server

WRITER = ("stream", "stream-secret")
CHUNK = 5_000


def events_chunk(i: int) -> pa.Table:
    """5,000 click events with ids i*5000 .. i*5000+4999."""
    ids = pa.array(range(i * CHUNK, (i + 1) * CHUNK), pa.int64())
    return pa.table(
        {
            "event_id": ids,
            "customer_id": pc.cast(pc.add(pc.divide(ids, 7), 1), pa.string()),
            "event_type": pa.array(["click"] * CHUNK),
            "amount": pc.multiply(pc.cast(pc.bit_wise_and(ids, 15), pa.float64()), 1.5),
        }
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("ingest")
    # A configured table, so the embedded lakehouse is not built; ingest creates new tables
    # in <data_dir>/lakehouse, which the server serves as they appear.
    write_deltalake(str(work / "seed"), pa.table({"id": [1]}))
    (work / "persona.toml").write_text(
        'data_dir = "d"\n[tables]\nseed = "seed"\n'
        "[ingest]\nbatch_rows = 10000\nbatch_latency_ms = 200\n"
        '[access]\nanonymous = "read"\n'
        f'[[access.users]]\nname = "{WRITER[0]}"\npassword = "{WRITER[1]}"\naccess = "write"\n'
    )
    server = Server(work)
    yield work, server
    server.stop()


def writer(server):
    return flight_sql.connect(server.uri, db_kwargs={"username": WRITER[0], "password": WRITER[1]}, autocommit=True)


def count(conn, sql="SELECT count(*) FROM live_events"):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def test_adbc_ingest_while_another_client_queries(lake):
    work, server = lake
    chunks = [events_chunk(i) for i in range(20)]
    seen = []
    done = threading.Event()

    def read():
        with server.connect() as reader:
            while not done.is_set():
                try:
                    seen.append(count(reader))
                except adbc_driver_manager.Error as e:
                    # Until the first commit creates the table.
                    assert "live_events" in str(e)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with writer(server) as conn, conn.cursor() as cur:
            for i, chunk in enumerate(chunks):
                assert cur.adbc_ingest("live_events", chunk, mode="create_append") == CHUNK
    finally:
        done.set()
        reader.join()

    with server.connect() as conn:
        assert count(conn) == 20 * CHUNK
        with conn.cursor() as cur:
            cur.execute("SELECT count(DISTINCT event_id), sum(amount) FROM live_events")
            distinct, total = cur.fetchone()
    everything = pa.concat_tables(chunks)
    assert distinct == everything.num_rows
    assert total == pytest.approx(pc.sum(everything["amount"]).as_py())
    # The reader saw the table grow, a whole acknowledged chunk at a time, never shrink.
    assert seen == sorted(seen) and seen[-1] <= 20 * CHUNK
    assert all(n % CHUNK == 0 for n in seen)

    delta = DeltaTable(str(work / "d/lakehouse/live_events"))
    assert delta.to_pyarrow_table().num_rows == 20 * CHUNK
    # Each adbc_ingest call is its own stream: one commit per call (5,000 rows < batch_rows).
    assert delta.version() == 19


def test_a_retried_batch_is_not_duplicated(lake):
    work, server = lake
    chunk = events_chunk(100)
    with writer(server) as conn, conn.cursor() as cur:
        before = count(conn)
        cur.adbc_ingest("live_events", chunk, mode="create_append")
        version = DeltaTable(str(work / "d/lakehouse/live_events")).version()
        # The acknowledgement was lost: the client sends the very same batch again.
        cur.adbc_ingest("live_events", chunk, mode="create_append")
        assert count(conn) == before + CHUNK
    assert DeltaTable(str(work / "d/lakehouse/live_events")).version() == version


def test_ingest_modes_and_write_access(lake):
    _, server = lake
    with writer(server) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="exists"):
            cur.adbc_ingest("live_events", events_chunk(0), mode="create")
        with pytest.raises(adbc_driver_manager.Error, match="missing_table"):
            cur.adbc_ingest("missing_table", events_chunk(0), mode="append")
        assert cur.adbc_ingest("replaced", events_chunk(0), mode="replace") == CHUNK
        assert cur.adbc_ingest("replaced", events_chunk(1), mode="replace") == CHUNK
        assert count(conn, "SELECT min(event_id) FROM replaced") == CHUNK
    with server.connect() as anonymous, anonymous.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="not allowed without write access"):
            cur.adbc_ingest("live_events", events_chunk(0), mode="append")


def test_dml_through_cursor_execute(lake):
    work, server = lake
    write_deltalake(
        str(work / "d/lakehouse/accounts"),
        pa.table({"id": [1, 2, 3], "email": ["a@x.io", "B@X.io", None], "tier": ["free"] * 3}),
    )
    with writer(server) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO accounts VALUES (4, 'd@x.io', 'pro')")
        assert cur.fetchall() == [(1, 1)]
        cur.execute("UPDATE accounts SET email = normalize_email(email) WHERE email IS NOT NULL")
        assert cur.fetchone()[0] == 3
        cur.execute("DELETE FROM accounts WHERE email IS NULL")
        assert cur.fetchone()[0] == 1
        cur.execute(
            "MERGE INTO accounts a USING (SELECT 2 AS id, 'pro' AS tier UNION ALL SELECT 5, 'free') s "
            "ON a.id = s.id WHEN MATCHED THEN UPDATE SET tier = s.tier "
            "WHEN NOT MATCHED THEN INSERT (id, email, tier) VALUES (s.id, NULL, s.tier)"
        )
        assert cur.fetchone()[0] == 2
    got = DeltaTable(str(work / "d/lakehouse/accounts")).to_pyarrow_table().sort_by("id").to_pylist()
    assert got == [
        {"id": 1, "email": "a@x.io", "tier": "free"},
        {"id": 2, "email": "b@x.io", "tier": "pro"},
        {"id": 4, "email": "d@x.io", "tier": "pro"},
        {"id": 5, "email": None, "tier": "free"},
    ]
    with server.connect() as anonymous, anonymous.cursor() as cur:
        with pytest.raises(adbc_driver_manager.Error, match="not allowed without write access"):
            cur.execute("DELETE FROM accounts")

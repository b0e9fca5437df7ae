"""Credentials as ADBC sends them: user name and password (a Handshake, then the bearer token
the server answers with), or a fixed token in the authorization header."""

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pytest

from conftest import Server
from test_adbc import raw_events


@pytest.fixture(scope="module")
def guarded(server, tmp_path_factory):
    """A second server over the same embedded lakehouse that lets nobody in anonymously."""
    workdir = tmp_path_factory.mktemp("guarded")
    (workdir / "persona.toml").write_text(
        f'data_dir = "{server.workdir / ".persona"}"\n'
        '[access]\nanonymous = "none"\n'
        '[[access.users]]\nname = "analyst"\npassword = "correct horse"\naccess = "read"\n'
        '[[access.users]]\nname = "etl"\ntoken = "etl-token-1"\naccess = "write"\n'
    )
    s = Server(workdir)
    yield s
    s.stop()


def count_events(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        return cur.fetchone()[0]


def test_anonymous_clients_are_turned_away(guarded):
    with flight_sql.connect(guarded.uri, autocommit=True) as conn:
        with pytest.raises(adbc_driver_manager.Error, match="requires credentials"):
            count_events(conn)


def test_user_name_and_password(guarded):
    expected = raw_events().execute("SELECT count(*) FROM events").fetchone()[0]
    kwargs = {"username": "analyst", "password": "correct horse"}
    with flight_sql.connect(guarded.uri, db_kwargs=kwargs, autocommit=True) as conn:
        assert count_events(conn) == expected
        # A reader may query but not run what writes.
        with pytest.raises(adbc_driver_manager.Error, match="needs write access"), conn.cursor() as cur:
            cur.execute("CALL persona.resolve()")
            cur.fetchall()


def test_wrong_password_is_refused(guarded):
    kwargs = {"username": "analyst", "password": "incorrect horse"}
    with pytest.raises(adbc_driver_manager.Error, match="wrong user name or password"):
        with flight_sql.connect(guarded.uri, db_kwargs=kwargs, autocommit=True) as conn:
            count_events(conn)


def test_fixed_bearer_token(guarded):
    header = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
    with flight_sql.connect(guarded.uri, db_kwargs={header: "Bearer etl-token-1"}, autocommit=True) as conn:
        assert count_events(conn) == raw_events().execute("SELECT count(*) FROM events").fetchone()[0]

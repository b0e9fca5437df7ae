"""The `persona` command line as an operator meets it: help, and configuration mistakes."""

import subprocess

from conftest import persona_binary


def run(*args, cwd):
    return subprocess.run([persona_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands(tmp_path):
    out = run("--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "serve" in out.stdout and "sql" in out.stdout
    serve = run("serve", "--help", cwd=tmp_path)
    for flag in ("--config", "--listen", "--data-dir", "PERSONA_LISTEN"):
        assert flag in serve.stdout


def test_unknown_config_key_is_named(tmp_path):
    (tmp_path / "persona.toml").write_text('listen = "127.0.0.1:0"\nsql_dri = "sql"\n')
    out = run("serve", cwd=tmp_path)
    assert out.returncode != 0
    assert "sql_dri" in out.stderr and "persona.toml" in out.stderr


def test_missing_table_location_is_named(tmp_path):
    (tmp_path / "persona.toml").write_text('[tables]\norders = "no/such/folder"\n')
    out = run("serve", "--listen", "127.0.0.1:0", cwd=tmp_path)
    assert out.returncode != 0
    assert "orders" in out.stderr and "no/such/folder" in out.stderr

"""The `persona` command line as an operator meets it: help, and configuration mistakes."""

import os
import re
import subprocess

from conftest import persona_binary


def run(*args, cwd, env=None):
    return subprocess.run([persona_binary(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def messages(stderr: str) -> list[str]:
    """stderr without the log lines (which carry a timestamp and a level)."""
    return [l for l in stderr.splitlines() if l.strip() and not re.search(r"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b", l)]


def small_table(workdir, rows: int = 3) -> None:
    """`t` (id, name) with `rows` rows under workdir/.persona/lakehouse, and a persona.toml
    serving it (so no command builds the embedded lakehouse)."""
    (workdir / "t.csv").write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, rows + 1)))
    out = run("load", "t", "t.csv", cwd=workdir)
    assert out.returncode == 0, out.stderr
    (workdir / "persona.toml").write_text('[tables]\nt = ".persona/lakehouse/t"\n')


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
    # One line, naming the table and where it was looked for; no stray debug dump after it.
    assert messages(out.stderr) == [
        f"persona: table not found: orders: no Delta table at file://{tmp_path}/no/such/folder/ (the folder does not exist)"
    ], out.stderr
    assert "Os {" not in out.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    small_table(tmp_path)
    # Far more than a pipe buffer holds: the reader's early exit is felt while printing.
    cmd = [persona_binary(), "sql", "SELECT value FROM generate_series(1, 300000)"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, stderr
    assert first.startswith("+"), first
    assert "panicked" not in stderr and "Broken pipe" not in stderr, stderr


def test_only_serve_needs_the_credential_variables(tmp_path):
    small_table(tmp_path)
    with open(tmp_path / "persona.toml", "a") as f:
        f.write('[[access.users]]\nname = "loader"\npassword_env = "PERSONA_TEST_LOADER_PASSWORD"\naccess = "write"\n')
    env = {k: v for k, v in os.environ.items() if k != "PERSONA_TEST_LOADER_PASSWORD"}
    out = run("sql", "SELECT count(*) AS n, sum(id) AS s FROM t", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert "| 3 | 6 |" in out.stdout, out.stdout
    out = run("serve", "--listen", "127.0.0.1:0", cwd=tmp_path, env=env)
    assert out.returncode != 0
    assert messages(out.stderr) == [
        "persona: configuration error: access.users `loader`: environment variable PERSONA_TEST_LOADER_PASSWORD is not set"
    ], out.stderr
    # A declaration that is wrong in itself still stops every command.
    with open(tmp_path / "persona.toml", "a") as f:
        f.write('[[access.users]]\nname = "nobody"\naccess = "read"\n')
    out = run("sql", "SELECT 1", cwd=tmp_path, env=env)
    assert out.returncode != 0 and "access.users `nobody`: give a password" in out.stderr, out.stderr


def test_a_schedule_naming_an_unknown_segment_stops_serve(tmp_path):
    (tmp_path / "sql/segments").mkdir(parents=True)
    (tmp_path / "sql/segments/big.sql").write_text("-- segment: big\n-- version: 1\nSELECT 'a' AS customer_id\n")
    (tmp_path / "persona.toml").write_text('[[schedule]]\nsegments = ["bigg"]\ncron = "0 6 * * *"\n')
    out = run("serve", "--listen", "127.0.0.1:0", cwd=tmp_path)
    assert out.returncode != 0
    lines = messages(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("persona: configuration error: schedule[0]: not found: segment `bigg`"), out.stderr
    assert lines[0].endswith("known: big"), out.stderr


def test_defaults_sit_beside_the_configuration_file(tmp_path):
    project = tmp_path / "project"
    (project / "sql/checks").mkdir(parents=True)
    (project / "sql/checks/one.sql").write_text("-- check: one\n-- version: 1\nSELECT 1 AS x WHERE false\n")
    small_table(project)
    # From another working directory: sql/ and .persona/ are found next to the file.
    out = run("check", "--config", str(project / "persona.toml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip().endswith("1 check: 1 pass, 0 warn, 0 fail, 0 error"), out.stdout
    assert (project / ".persona/persona/check_runs").is_dir()
    assert not (tmp_path / ".persona").exists()


def test_arguments_have_help(tmp_path):
    for command in (["optimize"], ["vacuum"], ["checkpoint"], ["segments", "preview"], ["segments", "diff"], ["segments", "replay"]):
        out = run(*command, "--help", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        blank = [l for l in lines if re.fullmatch(r"\s+(<\w+>|--\w[\w-]* <\w+>)\s*", l)]
        assert not blank, f"{command}: {blank}"

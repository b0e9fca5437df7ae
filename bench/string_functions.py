#!/usr/bin/env python3
"""Pairs per second of jaro_winkler and levenshtein through SQL: persona against DuckDB.

    python bench/string_functions.py [--pairs 2000000] [--persona target/release/persona]

Builds N name pairs from generated profiles (true matches with their typos, and random
strangers), stored once as a Delta table (what persona serves) and as Parquet (what DuckDB
reads). Every pair is compared --repeat-pairs times (10) so the work outweighs a process's
start. Each query runs as a whole process, three times; the median of a baseline query that
reads the same strings (sum of their lengths) is subtracted, so the figure is the functions'
own throughput. The sums both engines compute are printed side by side: they must agree.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from deltalake import write_deltalake

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

QUERIES = {
    # name: (persona SQL, DuckDB SQL); {t} is the pairs, each pair {r} times (a cross join with
    # a small VALUES list), so the functions' work outweighs starting a process.
    "baseline": ("SELECT sum(length(a) + length(b)) FROM {t}", "SELECT sum(length(a) + length(b)) FROM {t}"),
    "jaro_winkler": ("SELECT round(sum(jaro_winkler(a, b)), 3) FROM {t}", "SELECT round(sum(jaro_winkler_similarity(a, b)), 3) FROM {t}"),
    "levenshtein": ("SELECT sum(levenshtein(a, b)) FROM {t}", "SELECT sum(levenshtein(a, b)) FROM {t}"),
}


def repeated(table: str, times: int) -> str:
    values = ", ".join(f"({i})" for i in range(times))
    return f"{table} CROSS JOIN (VALUES {values}) AS r(x)" if times > 1 else table


def make_pairs(work: Path, n: int, seed: int) -> Path:
    out = work / f"name-pairs-{n}-seed{seed}"
    if (out / "pairs" / "_delta_log").is_dir():
        return out
    profiles = work / f"profiles-for-pairs-seed{seed}"
    if not (profiles / "profiles.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "generate_profiles.py"), "--profiles", str(max(n // 2, 1000)),
                        "--seed", str(seed), "--out", str(profiles)], check=True)
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)").fetchall()
    table = con.sql(f"""
        WITH p AS (SELECT entity_id, lower(coalesce(given_name, '') || ' ' || coalesce(surname, '')) AS name,
                          row_number() OVER (ORDER BY source_customer_id) AS k
                   FROM read_parquet('{profiles / 'profiles.parquet'}')),
        matches AS (SELECT l.name AS a, r.name AS b FROM p l JOIN p r ON l.entity_id = r.entity_id AND l.k < r.k),
        -- Each profile against the one at its place in a fixed shuffle: a plain equi-join (a
        -- computed key on both sides makes DuckDB fall back to a nested loop).
        shuffled AS (SELECT name, row_number() OVER (ORDER BY hash(k * 7919), k) AS k FROM p),
        strangers AS (SELECT l.name AS a, r.name AS b FROM p l JOIN shuffled r ON r.k = l.k)
        SELECT * FROM (SELECT * FROM matches UNION ALL SELECT * FROM strangers) LIMIT {n}
    """).to_arrow_table()
    out.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(out / "pairs"), table, mode="overwrite")
    pq.write_table(table, out / "pairs.parquet")
    return out


def run(cmd: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, done.stdout


def answer(persona_output: str) -> str:
    """The single value of a one-cell table printed by `persona sql`."""
    rows = [l for l in persona_output.splitlines() if l.startswith("|")]
    return rows[-1].strip("| ").strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--repeat-pairs", type=int, default=10, help="compare every pair this many times")
    ap.add_argument("--persona", type=Path, default=ROOT / "target" / "release" / "persona")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/persona-bench"))
    args = ap.parse_args()
    if not args.persona.exists():
        sys.exit(f"{args.persona} not found: build it with `cargo build --release` or pass --persona")
    data = make_pairs(args.work, args.pairs, args.seed)
    n = duckdb.execute(f"SELECT count(*) FROM read_parquet('{data / 'pairs.parquet'}')").fetchone()[0] * args.repeat_pairs
    config = data / "persona.toml"
    config.write_text(f'data_dir = "{data / "state"}"\n[tables]\npairs = "{data / "pairs"}"\n')

    results = {}
    for name, (persona_sql, duck_sql) in QUERIES.items():
        duck_sql = duck_sql.format(t=repeated(f"read_parquet('{data / 'pairs.parquet'}')", args.repeat_pairs))
        persona_sql = persona_sql.format(t=repeated("pairs", args.repeat_pairs))
        p_runs, d_runs = [], []
        for _ in range(args.runs):
            wall, out = run([str(args.persona), "sql", "--config", str(config), persona_sql])
            p_runs.append(wall)
            p_value = answer(out)
            duck = f"import duckdb; con = duckdb.connect(); con.execute('SET enable_progress_bar = false'); print(con.execute({duck_sql!r}).fetchone()[0])"
            wall, out = run([sys.executable, "-c", duck])
            d_runs.append(wall)
            d_value = out.strip()
        results[name] = (statistics.median(p_runs), statistics.median(d_runs), p_value, d_value)

    print(f"\n{n:,} name pairs; whole-process medians of {args.runs} runs")
    print(f"{'function':<13} {'persona s':>9} {'duckdb s':>9} {'persona pairs/s':>16} {'duckdb pairs/s':>15} {'ratio':>6}  sums (persona | duckdb)")
    base_p, base_d = results["baseline"][0], results["baseline"][1]
    for name, (p, d, pv, dv) in results.items():
        if name == "baseline":
            print(f"{name:<13} {p:9.2f} {d:9.2f} {'':>16} {'':>15} {'':>6}  {pv} | {dv}")
            continue
        p_rate = n / max(p - base_p, 1e-3)
        d_rate = n / max(d - base_d, 1e-3)
        print(f"{name:<13} {p:9.2f} {d:9.2f} {p_rate:16,.0f} {d_rate:15,.0f} {p_rate / d_rate:6.2f}  {pv} | {dv}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Identity resolution at scale: persona against Splink on the same generated profiles.

    python bench/identity.py --profiles 1000000 [--persona target/release/persona] [--work DIR]

Generates N seeded profiles (bench/generate_profiles.py) once per (N, seed), then resolves them
with `persona resolve` and with Splink's DuckDB backend (bench/splink_resolve.py), each as its
own process, and prints for both: wall seconds, peak memory (the operating system's figure for
that process), candidate pairs scored, and precision / recall / F1 over record pairs, both for
the linked edges and for the pairs the final clusters imply, against the generator's truth.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def timed(cmd: list[str], log: Path) -> tuple[float, float]:
    """Runs cmd; returns (wall seconds, peak resident GiB) of that process."""
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed; see {log}:\n{log.read_text()[-3000:]}")
    return wall, usage.ru_maxrss / 1024 / 1024


def scores(con: duckdb.DuckDBPyConnection, edges: str, clusters: str) -> dict[str, float]:
    """Pairwise precision/recall/F1 of edges (uid_l, uid_r) and clusters (uid, cluster_id)."""
    true_pairs = con.execute("SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM truth GROUP BY entity_id)").fetchone()[0]
    edge_hits, edge_count = con.execute(
        f"SELECT count(*) FILTER (WHERE a.entity_id = b.entity_id), count(*) FROM {edges} e "
        "JOIN truth a ON a.uid = e.uid_l JOIN truth b ON b.uid = e.uid_r"
    ).fetchone()
    cluster_hits, cluster_pairs = con.execute(
        f"""WITH j AS (SELECT c.cluster_id, t.entity_id FROM {clusters} c JOIN truth t USING (uid))
            SELECT (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY cluster_id, entity_id)),
                   (SELECT sum(n * (n - 1) / 2) FROM (SELECT count(*) n FROM j GROUP BY cluster_id))"""
    ).fetchone()

    def prf(hits, predicted):
        p = hits / predicted if predicted else 0.0
        r = hits / true_pairs if true_pairs else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    ep, er, ef = prf(edge_hits, edge_count)
    cp, cr, cf = prf(cluster_hits, cluster_pairs)
    return {"edges": edge_count, "edge_p": ep, "edge_r": er, "edge_f1": ef, "cluster_p": cp, "cluster_r": cr, "cluster_f1": cf}


def splink_pairs(con: duckdb.DuckDBPyConnection, parquet: Path) -> int:
    """Distinct pairs Splink's blocking rules generate (what it scores), counted by DuckDB."""
    sys.path.insert(0, str(HERE))
    from splink_resolve import BLOCKING, CLEAN

    con.execute(f"CREATE OR REPLACE TABLE splink_input AS {CLEAN}", [str(parquet)])
    joins = [
        "SELECT l.unique_id a, r.unique_id b FROM splink_input l JOIN splink_input r ON "
        + " AND ".join(f"l.{c} = r.{c}" for c in cols) + " AND l.unique_id < r.unique_id"
        for cols in BLOCKING
    ]
    return con.execute("SELECT count(*) FROM (" + " UNION ".join(joins) + ")").fetchone()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--persona", type=Path, default=ROOT / "target" / "release" / "persona")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp/persona-bench"))
    ap.add_argument("--skip-splink", action="store_true")
    args = ap.parse_args()
    if not args.persona.exists():
        sys.exit(f"{args.persona} not found: build it with `cargo build --release` or pass --persona")

    data = args.work / f"profiles-{args.profiles}-seed{args.seed}"
    if not (data / "profiles" / "_delta_log").is_dir():
        subprocess.run([sys.executable, str(HERE / "generate_profiles.py"), "--profiles", str(args.profiles),
                        "--seed", str(args.seed), "--out", str(data), "--delta"], check=True)

    # persona: a fresh state folder, so every run builds its identity tables from nothing.
    state = args.work / "persona-state"
    shutil.rmtree(state, ignore_errors=True)
    config = args.work / "persona.toml"
    # The generated phones are UK numbers, most written without +44, as a UK shop's would be.
    config.write_text(f'data_dir = "{state}"\n[tables]\nprofiles = "{data / "profiles"}"\n[identity]\nphone_country_code = "44"\n')
    persona_wall, persona_mem = timed([str(args.persona), "resolve", "--config", str(config)], args.work / "persona.log")
    summary = (args.work / "persona.log").read_text().strip().splitlines()[-1]
    persona_candidates = int(summary.split(" candidate pairs")[0].split()[-1])

    con = duckdb.connect()
    con.execute(f"CREATE TABLE truth AS SELECT source_customer_id AS uid, entity_id FROM read_parquet('{data / 'profiles.parquet'}')")
    links = DeltaTable(str(state / "persona" / "identity_links")).to_pyarrow_table(columns=["source_customer_id", "master_customer_id"])
    pairs = DeltaTable(str(state / "persona" / "identity_pairs")).to_pyarrow_table(columns=["source_customer_id_a", "source_customer_id_b"])
    con.register("persona_links", links)
    con.register("persona_pairs", pairs)
    con.execute("CREATE VIEW persona_clusters AS SELECT source_customer_id AS uid, master_customer_id AS cluster_id FROM persona_links")
    con.execute("CREATE VIEW persona_edges AS SELECT source_customer_id_a AS uid_l, source_customer_id_b AS uid_r FROM persona_pairs")
    rows = [("persona", persona_wall, persona_mem, persona_candidates, scores(con, "persona_edges", "persona_clusters"))]

    if not args.skip_splink:
        out = args.work / "splink-out"
        shutil.rmtree(out, ignore_errors=True)
        splink_wall, splink_mem = timed([sys.executable, str(HERE / "splink_resolve.py"), "--profiles",
                                         str(data / "profiles.parquet"), "--out", str(out)], args.work / "splink.log")
        splink_candidates = splink_pairs(con, data / "profiles.parquet")
        con.execute(f"CREATE VIEW splink_edges AS SELECT uid_l, uid_r FROM read_parquet('{out / 'edges.parquet'}')")
        con.execute(f"CREATE VIEW splink_clusters AS SELECT uid, cluster_id FROM read_parquet('{out / 'clusters.parquet'}')")
        rows.append(("splink", splink_wall, splink_mem, splink_candidates, scores(con, "splink_edges", "splink_clusters")))

    people = con.execute("SELECT count(DISTINCT entity_id) FROM truth").fetchone()[0]
    print(f"\n{args.profiles:,} profiles of {people:,} people (seed {args.seed})")
    print(f"{'engine':<8} {'wall s':>7} {'peak GiB':>8} {'candidates':>11} {'edges':>9} {'edge P':>7} {'edge R':>7} {'edge F1':>7} {'clus P':>7} {'clus R':>7} {'clus F1':>7}")
    for name, wall, mem, cand, s in rows:
        cand_text = f"{cand:,}" if isinstance(cand, int) else "-"
        print(f"{name:<8} {wall:7.1f} {mem:8.2f} {cand_text:>11} {s['edges']:9,} {s['edge_p']:7.4f} {s['edge_r']:7.4f} {s['edge_f1']:7.4f} {s['cluster_p']:7.4f} {s['cluster_r']:7.4f} {s['cluster_f1']:7.4f}")
    if len(rows) == 2:
        print(f"persona / splink: time {rows[0][1] / rows[1][1]:.2f}x, memory {rows[0][2] / rows[1][2]:.2f}x")


if __name__ == "__main__":
    main()

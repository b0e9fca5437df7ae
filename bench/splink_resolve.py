#!/usr/bin/env python3
"""Resolves generated profiles with Splink (DuckDB backend): the peer in bench/identity.py.

Follows Splink's documented deduplication recipe: light cleaning in SQL, the comparison
library's name / date / e-mail comparisons, blocking rules of the same evidence persona blocks
on, u by random sampling, m by EM on two blocking rules, predict and cluster at one threshold.
Writes <out>/edges.parquet (uid_l, uid_r, match_probability) and <out>/clusters.parquet
(uid, cluster_id).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import duckdb
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

CLEAN = """
SELECT source_customer_id AS unique_id,
       nullif(lower(trim(given_name)), '') AS given_name,
       nullif(lower(trim(surname)), '') AS surname,
       nullif(lower(trim(email)), '') AS email,
       nullif(right(regexp_replace(phone, '[^0-9]', '', 'g'), 10), '') AS phone,
       street_number, lower(address_1) AS address_1, lower(suburb) AS suburb, postcode, state,
       date_of_birth
FROM read_parquet(?)
"""

# Pairs agreeing on all columns of any one rule are scored.
BLOCKING = [
    ("email",),
    ("phone",),
    ("given_name", "surname"),
    ("surname", "date_of_birth"),
    ("given_name", "date_of_birth"),
    ("postcode", "surname"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profiles", type=Path, required=True, help="profiles.parquet from generate_profiles.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)

    con = duckdb.connect()
    df = con.execute(CLEAN, [str(args.profiles)]).to_arrow_table()
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1"),
            cl.JaroWinklerAtThresholds("suburb"),
            cl.LevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in BLOCKING],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(db_api.register(df), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth"), block_on("email")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    predictions = linker.inference.predict(threshold_match_probability=args.threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, args.threshold)

    args.out.mkdir(parents=True, exist_ok=True)
    con.sql(f"SELECT unique_id_l AS uid_l, unique_id_r AS uid_r, match_probability FROM {predictions.physical_name}").write_parquet(str(args.out / "edges.parquet"))
    con.sql(f"SELECT unique_id AS uid, cluster_id FROM {clusters.physical_name}").write_parquet(str(args.out / "clusters.parquet"))


if __name__ == "__main__":
    main()

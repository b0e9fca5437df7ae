#!/usr/bin/env python3
"""Seeded generator of synthetic customer profiles with ground truth, for identity benchmarks.

N profiles from four source systems (webshop, pos, loyalty, support) describe about N / 1.9
people: each person has 1 to 4 profiles, each profile a corrupted copy of the person's true
details. Corruptions, each with its own rate: typos (substitute, insert, delete, transpose a
character), swapped first/last names, nicknames, missing fields, e-mail case / dots / plus-tags,
phone formats, street-type abbreviations, date-of-birth digit swaps and postcode typos.

Names, streets, suburbs, postcodes and states are drawn from the FEBRL records shipped in
data/ (their real frequency mix: common names collide, as in a real customer base), so the
only way to tell two people apart is the evidence a resolver would use.

Writes <out>/profiles.parquet (columns: source, source_customer_id, given_name, surname, email,
phone, street_number, address_1, suburb, postcode, state, date_of_birth, entity_id) and, with
--delta, the same rows as a Delta table <out>/profiles (python deltalake writer). entity_id is
the ground truth: resolvers must not read it.

    python bench/generate_profiles.py --profiles 1000000 --seed 7 --out /tmp/bench --delta
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["webshop", "pos", "loyalty", "support"]
# Share of people with 1, 2, 3, 4 profiles (mean 1.92 profiles a person).
PROFILES_PER_PERSON = [(1, 0.40), (2, 0.35), (3, 0.18), (4, 0.07)]
NICKNAMES = {
    "robert": ["bob", "rob", "bobby"], "william": ["bill", "will", "billy"], "james": ["jim", "jimmy"],
    "john": ["jack", "johnny"], "michael": ["mike", "mick"], "richard": ["rick", "dick"],
    "thomas": ["tom", "tommy"], "charles": ["charlie", "chuck"], "joseph": ["joe", "joey"],
    "daniel": ["dan", "danny"], "matthew": ["matt"], "christopher": ["chris"], "anthony": ["tony"],
    "benjamin": ["ben"], "samuel": ["sam"], "nicholas": ["nick"], "alexander": ["alex"],
    "jessica": ["jess"], "elizabeth": ["liz", "beth", "lizzie"], "katherine": ["kate", "kathy"],
    "catherine": ["cathy", "kate"], "margaret": ["maggie", "peggy"], "jennifer": ["jen", "jenny"],
    "rebecca": ["becky", "bec"], "samantha": ["sam"], "victoria": ["vicky", "tori"],
    "alexandra": ["alex", "lexi"], "stephanie": ["steph"], "kimberley": ["kim"], "jacqueline": ["jackie"],
    "patricia": ["pat", "trish"], "susan": ["sue"], "deborah": ["deb", "debbie"], "emily": ["em"],
    "joshua": ["josh"], "zachary": ["zac", "zack"], "jacob": ["jake"], "nathan": ["nate"],
}
STREET_TYPES = {"street": "st", "road": "rd", "avenue": "ave", "crescent": "cres", "place": "pl",
                "circuit": "cct", "drive": "dr", "court": "ct", "parade": "pde", "close": "cl"}
DOMAINS = [("gmail.com", 0.35), ("yahoo.co.uk", 0.12), ("hotmail.com", 0.15), ("outlook.com", 0.12),
           ("btinternet.com", 0.08), ("icloud.com", 0.10), ("example.org", 0.08)]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary() -> dict[str, list[str]]:
    """Column values of the shipped FEBRL files, repeats kept so draws follow real frequencies."""
    vocab: dict[str, list[str]] = {k: [] for k in ("given_name", "surname", "address_1", "suburb", "postcode", "state")}
    for name in ("febrl4a.csv", "febrl4b.csv"):
        with open(ROOT / "data" / name, newline="") as f:
            for row in csv.DictReader(f):
                for k in vocab:
                    v = (row.get(k) or "").strip()
                    if v:
                        vocab[k].append(v)
    return vocab


class Generator:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.v = vocabulary()

    def pick(self, key: str) -> str:
        return self.r.choice(self.v[key])

    def weighted(self, options):
        x, acc = self.r.random(), 0.0
        for value, p in options:
            acc += p
            if x < acc:
                return value
        return options[-1][0]

    def typo(self, s: str) -> str:
        if len(s) < 2:
            return s
        i = self.r.randrange(len(s))
        kind = self.r.randrange(4)
        if kind == 0:
            return s[:i] + self.r.choice(LETTERS) + s[i + 1:]
        if kind == 1:
            return s[:i] + self.r.choice(LETTERS) + s[i:]
        if kind == 2:
            return s[:i] + s[i + 1:]
        i = min(i, len(s) - 2)
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]

    def person(self) -> dict:
        r = self.r
        given, surname = self.pick("given_name"), self.pick("surname")
        year, month, day = r.randint(1940, 2006), r.randint(1, 12), r.randint(1, 28)
        local = self.weighted([
            (f"{given}.{surname}", 0.35), (f"{given}{surname}", 0.2), (f"{given[0]}{surname}", 0.2),
            (f"{given}{r.randint(1, 99)}", 0.15), (f"{surname}.{given}{r.randint(1, 9)}", 0.1),
        ])
        return {
            "given_name": given,
            "surname": surname,
            "email": f"{local}@{self.weighted(DOMAINS)}",
            "phone": "7" + "".join(str(r.randrange(10)) for _ in range(9)),
            "street_number": str(r.randint(1, 300)),
            "address_1": self.pick("address_1"),
            "suburb": self.pick("suburb"),
            "postcode": self.pick("postcode"),
            "state": self.pick("state"),
            "date_of_birth": f"{year:04d}{month:02d}{day:02d}",
        }

    def phone_format(self, digits: str) -> str:
        a, b, c = digits[:4], digits[4:7], digits[7:]
        return self.r.choice([f"+44 {a} {b}{c}", f"0{a} {b} {c}", f"(0{a}) {b}-{c}", f"44{digits}", f"0{digits}"])

    def email_variant(self, email: str) -> str:
        r = self.r
        local, domain = email.split("@")
        if r.random() < 0.10 and domain == "gmail.com" and "." not in local:
            cut = r.randrange(1, len(local))
            local = local[:cut] + "." + local[cut:]
        if r.random() < 0.10:
            local += "+" + r.choice(["shop", "news", "promo", "2024"])
        if r.random() < 0.05:
            local = self.typo(local)
        email = f"{local}@{domain}"
        if r.random() < 0.30:
            email = r.choice([email.upper(), email.title(), " " + email])
        return email

    def profile(self, p: dict) -> dict:
        r = self.r
        q = dict(p)
        if r.random() < 0.08 and q["given_name"] in NICKNAMES:
            q["given_name"] = r.choice(NICKNAMES[q["given_name"]])
        for key in ("given_name", "surname"):
            if r.random() < 0.10:
                q[key] = self.typo(q[key])
        if r.random() < 0.03:
            q["given_name"], q["surname"] = q["surname"], q["given_name"]
        if r.random() < 0.25:
            q["given_name"], q["surname"] = q["given_name"].title(), q["surname"].upper()
        words = q["address_1"].split()
        if words and words[-1] in STREET_TYPES and r.random() < 0.4:
            q["address_1"] = " ".join(words[:-1] + [STREET_TYPES[words[-1]]])
        elif r.random() < 0.05:
            q["address_1"] = self.typo(q["address_1"])
        if r.random() < 0.05:
            q["date_of_birth"] = self.typo(q["date_of_birth"]) if r.random() < 0.5 else q["date_of_birth"][:6] + q["date_of_birth"][7] + q["date_of_birth"][6]
        if r.random() < 0.05:
            q["postcode"] = self.typo(q["postcode"])
        q["email"] = self.email_variant(q["email"])
        q["phone"] = self.phone_format(q["phone"])
        for key, rate in (("date_of_birth", 0.15), ("email", 0.20), ("phone", 0.25), ("street_number", 0.15),
                          ("address_1", 0.15), ("suburb", 0.10), ("postcode", 0.10), ("state", 0.10)):
            if r.random() < rate:
                q[key] = None
        return q


COLUMNS = ["source", "source_customer_id", "given_name", "surname", "email", "phone", "street_number",
           "address_1", "suburb", "postcode", "state", "date_of_birth", "entity_id"]


def generate(n: int, seed: int) -> pa.Table:
    g = Generator(seed)
    rows: dict[str, list] = {c: [] for c in COLUMNS}
    counters = {s: 0 for s in SOURCES}
    entity = 0
    while len(rows["source"]) < n:
        entity += 1
        person = g.person()
        k = min(g.weighted(PROFILES_PER_PERSON), n - len(rows["source"]))
        # A person's profiles come from distinct systems, as a real customer's do.
        for source in g.r.sample(SOURCES, k):
            counters[source] += 1
            q = g.profile(person)
            q["source"] = source
            q["source_customer_id"] = f"{source[0].upper()}{counters[source]:08d}"
            q["entity_id"] = entity
            for c in COLUMNS:
                rows[c].append(q[c])
    # Shuffle so no resolver can lean on row order.
    order = list(range(n))
    g.r.shuffle(order)
    return pa.table({c: pa.array([rows[c][i] for i in order], pa.int64() if c == "entity_id" else pa.string()) for c in COLUMNS})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--delta", action="store_true", help="also write a Delta table <out>/profiles")
    args = ap.parse_args()
    started = time.perf_counter()
    table = generate(args.profiles, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out / "profiles.parquet")
    if args.delta:
        from deltalake import write_deltalake
        write_deltalake(str(args.out / "profiles"), table, mode="overwrite")
    people = len(set(table.column("entity_id").to_pylist()))
    print(f"generated {table.num_rows} profiles of {people} people (seed {args.seed}) in {time.perf_counter() - started:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()

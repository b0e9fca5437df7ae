#!/usr/bin/env python3
"""Writes tests/slt/udf_cases.csv: string pairs and the value every persona-udfs similarity,
distance and phonetic function must return for them, computed by reference libraries.

Run from the repository root with a Python that has rapidfuzz and jellyfish:

    pip install rapidfuzz==3.14.6 jellyfish==1.3.0
    python scripts/udf_cases/generate.py

The output is committed; tests/slt/fuzzy.slt loads it and compares the UDFs against it for
every string layout (Utf8, LargeUtf8, Utf8View, Dictionary). Rerunning the script must
reproduce the file byte for byte (the typo generator is seeded).

Who computes which column
-------------------------
    jaro, jaro_winkler                    rapidfuzz.distance.Jaro / JaroWinkler .similarity
    damerau_levenshtein                   rapidfuzz.distance.DamerauLevenshtein.distance
    osa_distance                          rapidfuzz.distance.OSA.distance
    hamming                               rapidfuzz.distance.Hamming.distance(pad=False)
    normalized_levenshtein                rapidfuzz.distance.Levenshtein.normalized_similarity
    normalized_damerau_levenshtein        rapidfuzz.distance.DamerauLevenshtein.normalized_similarity
    sorensen_dice                         sorensen_dice() below (neither library has it)
    soundex_a, soundex_b                  jellyfish.soundex
    jw_const  = jaro_winkler(a, 'Jonathan')          rapidfuzz, as above
    dl_const  = damerau_levenshtein('Jonathan', a)   rapidfuzz, as above

Definitions, and where they differ between libraries
----------------------------------------------------
* Text is compared as Unicode code points after NFC normalization: the UDFs normalize both
  inputs to NFC, so every expected value here is computed on unicodedata.normalize('NFC', s).
  The CSV keeps the raw (possibly NFD) spelling, so NFC/NFD pairs must score as identical.
  Soundex is the exception: jellyfish applies NFKD itself, so it gets the raw string.
* Normalized similarities are 1 - distance / max(len(a), len(b)); two empty strings score 1.0.
  (rapidfuzz's normalized_similarity with default weights is exactly this.)
* Jaro / Jaro-Winkler of two empty strings: rapidfuzz says 1.0, jellyfish says 0.0. persona
  follows rapidfuzz (identical strings are maximally similar).
* jellyfish (1.x, Rust) splits strings into grapheme clusters, rapidfuzz and persona into code
  points; they differ where characters combine (Devanagari vowel signs, emoji joiner sequences,
  flags). For every other non-empty pair the script checks that jellyfish's jaro,
  jaro_winkler and damerau_levenshtein agree with rapidfuzz, and stops if they do not.
* Jaro-Winkler: prefix scale 0.1, at most 4 prefix characters, boost only when Jaro > 0.7 (the
  defaults of rapidfuzz and jellyfish).
* Hamming of strings of different lengths is undefined: rapidfuzz pads by default, persona
  returns NULL, so the column is empty (NULL) for those rows (computed with pad=False).
* Damerau-Levenshtein is the unrestricted distance (substrings may be edited twice: 'ca' to
  'abc' is 2); OSA is the restricted one ('ca' to 'abc' is 3). jellyfish's
  damerau_levenshtein_distance is cross-checked against rapidfuzz.
* Sørensen-Dice follows strsim's definition, counting characters (strsim divides by bytes,
  which persona fixes): whitespace is removed; equal strings score 1.0; otherwise a string of
  fewer than 2 characters scores 0.0; else 2 * |bigrams(a) ∩ bigrams(b)| / (|bigrams(a)| +
  |bigrams(b)|) over bigram multisets.

CSV encoding
------------
DataFusion's CSV reader reads an empty field as NULL, so every string is written with a
leading '|' that the SQL strips with substr(x, 2): '|' is the empty string. Expected numbers
are written with repr() (shortest round-trip form); an empty numeric field is NULL.
"""

import csv
import random
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import jellyfish
from rapidfuzz.distance import OSA, DamerauLevenshtein, Hamming, Jaro, JaroWinkler, Levenshtein

OUT = Path(__file__).resolve().parents[2] / "tests" / "slt" / "udf_cases.csv"
CONST = "Jonathan"


def nfc(s):
    return unicodedata.normalize("NFC", s)


def nfd(s):
    return unicodedata.normalize("NFD", s)


def sorensen_dice(a, b):
    a = [c for c in a if not c.isspace()]
    b = [c for c in b if not c.isspace()]
    if a == b:
        return 1.0
    if len(a) < 2 or len(b) < 2:
        return 0.0
    ba = Counter(zip(a, a[1:]))
    bb = Counter(zip(b, b[1:]))
    shared = sum((ba & bb).values())
    return 2 * shared / ((len(a) - 1) + (len(b) - 1))


def hamming(a, b):
    if len(a) != len(b):
        return None
    return Hamming.distance(a, b, pad=False)


HANDWRITTEN = [
    # empty strings
    ("", ""), ("", "a"), ("a", ""), ("", "José"), (" ", ""), (" ", " "),
    # textbook pairs
    ("martha", "marhta"), ("dwayne", "duane"), ("dixon", "dicksonx"), ("kitten", "sitting"),
    ("ca", "abc"), ("abc", "ca"), ("karolin", "kathrin"), ("cheeseburger", "cheese fries"),
    ("jellyfish", "smellyfish"), ("feris", "ferris"), ("french", "quebec"), ("abc", "abc"),
    ("a", "a"), ("a", "b"), ("ab", "ba"), ("abcd", "badc"), ("aaaa", "aa"), ("aa", "aaaa"),
    # transpositions
    ("jonh", "john"), ("micheal", "michael"), ("recieve", "receive"), ("teh", "the"),
    ("abcdef", "badcfe"), ("Smtih", "Smith"), ("Jnoes", "Jones"), ("1234", "1243"),
    # shared prefixes and suffixes
    ("johnson", "johnston"), ("prefix_abc", "prefix_xyz"), ("andersen", "anderson"),
    ("williams", "williamson"), ("mac", "macdonald"), ("catherine", "kathryn"),
    ("stephen", "steven"), ("abcdefgh", "abcdxxxx"), ("xxxxefgh", "abcdefgh"),
    # accents, with and without
    ("José", "Jose"), ("Müller", "Mueller"), ("Müller", "Muller"), ("Zoë", "Zoe"),
    ("François", "Francois"), ("Ångström", "Angstrom"), ("Łukasz", "Lukasz"),
    ("Nguyễn", "Nguyen"), ("Søren", "Soren"), ("Groß", "Gross"), ("Ærø", "Aero"),
    ("São Paulo", "Sao Paulo"), ("Dvořák", "Dvorak"), ("Beyoncé", "Beyonce"),
    ("naïve café", "naive cafe"), ("résumé", "resume"), ("été", "ete"), ("jürgen", "jurgen"),
    # the same text, NFC against NFD (the UDFs must see identical strings)
    (nfc("café"), nfd("café")), (nfc("Müller"), nfd("Müller")), (nfc("Zoë"), nfd("Zoë")),
    (nfc("Nguyễn Thị Ánh"), nfd("Nguyễn Thị Ánh")), (nfd("José"), nfc("José")),
    (nfc("Ångström"), nfd("Ångström")), (nfd("Dvořák"), nfc("Dvořák")),
    (nfd("résumé"), nfc("resume")), (nfd("São"), nfd("Sao")), (nfd("Åsa"), nfc("Asa")),
    (nfd("éèê"), nfc("éèê")), (nfd("ñ"), nfc("n")),
    # CJK, Hangul, Cyrillic, Greek, Arabic, Hebrew, Devanagari
    ("张伟", "张威"), ("张伟", "张伟"), ("東京", "京東"), ("山田太郎", "山田次郎"),
    ("北京市", "北京"), ("김민준", "김민수"), ("김민준", "민준김"), ("Дмитрий", "Дмитри"),
    ("Иванов", "Иваноф"), ("Αλέξανδρος", "Αλεξανδρος"), ("محمد", "محمود"), ("דוד", "דויד"),
    ("राहुल", "राहल"), ("ｊｏｈｎ", "john"), ("佐藤", "sato"),
    # emoji, including multi-codepoint sequences
    ("😀", "😀"), ("😀😃", "😃😀"), ("😀😃😄", "😀😃"), ("I ❤️ NY", "I ❤ NY"),
    ("👨‍👩‍👧", "👨‍👩‍👦"), ("🇬🇧", "🇺🇸"), ("a😀b", "ab"), ("😀abc", "abc😀"),
    # whitespace and punctuation
    ("de la cruz", "dela cruz"), ("van der berg", "vanderberg"), ("O'Brien", "OBrien"),
    ("Smith-Jones", "Smith Jones"), ("  padded  ", "padded"), ("a b c", "abc"),
    ("John Smith", "Smith John"), ("J. R. R. Tolkien", "JRR Tolkien"),
    # case differences are not normalized away by the similarity functions
    ("SMITH", "smith"), ("McDonald", "Mcdonald"), ("ÉCOLE", "école"),
    # numbers and mixed
    ("123 Main St", "123 Main Street"), ("Flat 4B", "Flat 48"), ("SW1A 1AA", "SW1A1AA"),
    ("+44 20 7946 0958", "020 7946 0958"), ("john.smith@gmail.com", "johnsmith@gmail.com"),
    # long strings
    ("the quick brown fox jumps over the lazy dog", "the quick brown fox jumped over the lazy dogs"),
    ("Pneumonoultramicroscopicsilicovolcanoconiosis", "Pneumonoultramicroscopicsilicovolcanokoniosis"),
    # soundex classics
    ("Robert", "Rupert"), ("Rubin", "Ashcraft"), ("Tymczak", "Pfister"), ("Honeyman", "Lee"),
    ("Gutierrez", "Jackson"), ("Lloyd", "Schmidt"), ("Washington", "Lukasiewicz"),
    ("123", "1abc"), ("Wh", "Hbc"),
]

FIRST_NAMES = [
    "james", "mary", "robert", "patricia", "michael", "jennifer", "william", "elizabeth",
    "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles",
    "karen", "christopher", "nancy", "matthew", "margaret", "anthony", "lisa", "siobhan",
    "aoife", "niamh", "oisin", "bartholomew", "gwendolyn", "zoë", "chloé", "andré", "jürgen",
    "björn", "søren", "mateusz", "agnieszka", "dmitri", "giuseppe",
]
SURNAMES = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis",
    "rodriguez", "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson",
    "thomas", "taylor", "moore", "jackson", "martin", "lee", "perez", "thompson", "white",
    "harris", "sanchez", "clark", "ramirez", "lewis", "robinson", "o'connor", "mcallister",
    "fitzgerald", "schwarzenegger", "kowalczyk", "nguyễn", "müller", "łukaszewicz",
    "dvořák", "fernández",
]

KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}
OCR = [("m", "rn"), ("rn", "m"), ("l", "1"), ("o", "0"), ("i", "l"), ("cl", "d"), ("vv", "w")]
PHONETIC = [("ph", "f"), ("ck", "k"), ("ie", "y"), ("ou", "ow"), ("th", "t"), ("z", "s"),
            ("c", "k"), ("ei", "ie")]


def corrupt(rng, s):
    """One FEBRL-style corruption: a keyboard slip, insertion, deletion, transposition, OCR or
    phonetic confusion, a doubled letter or a dropped accent."""
    chars = list(s)
    kind = rng.choice(["sub", "ins", "del", "swap", "ocr", "phon", "double", "accent"])
    i = rng.randrange(len(chars))
    if kind == "sub" and chars[i] in KEYBOARD:
        chars[i] = rng.choice(KEYBOARD[chars[i]])
    elif kind == "ins":
        chars.insert(i, rng.choice("abcdefghijklmnopqrstuvwxyz"))
    elif kind == "del" and len(chars) > 1:
        del chars[i]
    elif kind == "swap" and len(chars) > 1:
        i = min(i, len(chars) - 2)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    elif kind == "ocr":
        hits = [(a, b) for a, b in OCR if a in s]
        if hits:
            a, b = rng.choice(hits)
            return s.replace(a, b, 1)
        chars[i] = chars[i].upper()
    elif kind == "phon":
        hits = [(a, b) for a, b in PHONETIC if a in s]
        if hits:
            a, b = rng.choice(hits)
            return s.replace(a, b, 1)
        del chars[i]
    elif kind == "double":
        chars.insert(i, chars[i])
    elif kind == "accent":
        stripped = "".join(c for c in nfd(s) if not unicodedata.combining(c))
        if stripped != s:
            return stripped
        chars[i] = {"e": "é", "a": "á", "o": "ö", "u": "ü", "n": "ñ"}.get(chars[i], chars[i] + "e")
    else:
        chars.insert(i, chars[i])
    return "".join(chars)


def febrl_pairs():
    rng = random.Random(20240611)
    pairs = []
    for name in FIRST_NAMES + SURNAMES:
        pairs.append((name, corrupt(rng, name)))
    for _ in range(40):
        full = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        typo = corrupt(rng, corrupt(rng, full))
        pairs.append((full.title(), typo))
    return pairs


def one_char_per_grapheme(s):
    """jellyfish compares grapheme clusters, rapidfuzz and persona code points; the two only
    agree where no character joins its neighbour (marks, joiners, flags)."""
    return not any(
        unicodedata.category(c) in ("Mn", "Mc", "Me", "Cf") or 0x1F1E6 <= ord(c) <= 0x1F1FF
        for c in s
    )


def row(case_id, a, b):
    na, nb = nfc(a), nfc(b)
    jaro, jw = Jaro.similarity(na, nb), JaroWinkler.similarity(na, nb)
    dl = DamerauLevenshtein.distance(na, nb)
    if na and nb and one_char_per_grapheme(na) and one_char_per_grapheme(nb):
        # jellyfish computes the same measures; a disagreement means a definition changed.
        assert abs(jellyfish.jaro_similarity(na, nb) - jaro) < 1e-12, (a, b)
        assert abs(jellyfish.jaro_winkler_similarity(na, nb) - jw) < 1e-12, (a, b)
        assert jellyfish.damerau_levenshtein_distance(na, nb) == dl, (a, b)
    ham = hamming(na, nb)
    return {
        "id": case_id,
        "a": "|" + a,
        "b": "|" + b,
        "jaro": repr(jaro),
        "jaro_winkler": repr(jw),
        "damerau_levenshtein": dl,
        "osa_distance": OSA.distance(na, nb),
        "hamming": "" if ham is None else ham,
        "normalized_levenshtein": repr(Levenshtein.normalized_similarity(na, nb)),
        "normalized_damerau_levenshtein": repr(DamerauLevenshtein.normalized_similarity(na, nb)),
        "sorensen_dice": repr(sorensen_dice(na, nb)),
        "soundex_a": "|" + jellyfish.soundex(a),
        "soundex_b": "|" + jellyfish.soundex(b),
        "jw_const": repr(JaroWinkler.similarity(na, CONST)),
        "dl_const": DamerauLevenshtein.distance(CONST, na),
    }


def main():
    pairs = HANDWRITTEN + febrl_pairs()
    rows = [row(i + 1, a, b) for i, (a, b) in enumerate(pairs)]
    for r in rows:
        for key in ("a", "b"):
            if any(c in r[key] for c in "\r\n\""):
                sys.exit(f"case {r['id']}: quotes and newlines are not supported in {key}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} cases to {OUT}")


if __name__ == "__main__":
    main()

"""Write a copy of a manifest whose queries are misspelt, deterministically.

Every word of 5 or more letters in a caption or moment query gets one seeded random edit
(delete, insert or substitute a letter, or swap two neighbours; inserted and substituted
letters are QWERTY neighbours of the letter they replace), the kind of query typo
tolerance must forgive. The clips are the same files, so `evaluate` reuses their ingestion
when given the clean run's --workdir.

    python bench/spoken/misspell.py MANIFEST [--out FILE] [--seed 15] [--words all|one]
    python manage.py evaluate --manifest FILE --workdir WORKDIR_OF_THE_CLEAN_RUN
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
WORD = re.compile(r"[A-Za-z]{5,}")


def neighbours(letter: str) -> str:
    """Return the letters next to one on a QWERTY keyboard (same row)."""
    for row in ROWS:
        at = row.find(letter.lower())
        if at >= 0:
            return row[max(0, at - 1):at] + row[at + 1:at + 2]
    return "e"


def typo(word: str, rng: random.Random) -> str:
    """Return the word with one random edit (never the word itself)."""
    while True:
        at = rng.randrange(len(word))
        op = rng.choice(("delete", "insert", "substitute", "swap"))
        if op == "delete":
            out = word[:at] + word[at + 1:]
        elif op == "insert":
            out = word[:at] + rng.choice(neighbours(word[at])) + word[at:]
        elif op == "substitute":
            out = word[:at] + rng.choice(neighbours(word[at])) + word[at + 1:]
        else:
            at = min(at, len(word) - 2)
            out = word[:at] + word[at + 1] + word[at] + word[at + 2:]
        if out.lower() != word.lower():
            return out


def misspell(query: str, seed: int, words: str = "all") -> str:
    """Return the query with its long words misspelt (all of them, or one chosen at random)."""
    rng = random.Random(f"{seed}:{query}")
    found = list(WORD.finditer(query))
    if not found:
        return query
    chosen = found if words == "all" else [rng.choice(found)]
    out, last = [], 0
    for match in chosen:
        out += [query[last:match.start()], typo(match.group(), rng)]
        last = match.end()
    return "".join(out) + query[last:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--words", choices=("all", "one"), default="all")
    args = parser.parse_args()
    out = args.out or args.manifest.with_name(f"{args.manifest.stem}-typos-{args.words}.jsonl")
    lines = []
    for line in args.manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        for key in ("captions", "no_answer"):
            if key in entry:
                entry[key] = [misspell(q, args.seed, args.words) for q in entry[key]]
        for moment in entry.get("moments", []):
            moment["query"] = misspell(moment["query"], args.seed, args.words)
        lines.append(json.dumps(entry))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()

"""Real pair datasets for the text benchmarks, from Debian packages (`make bench-data` installs them).

- ``bible``: King James Version verse -> the same verse in the World English Bible (paraphrase retrieval,
  variable length: 2 to 90 words). KJV from Debian ``bible-kjv-text`` read with ``bible`` (package
  ``bible-kjv``); WEB from Debian ``sword-text-web`` (SWORD module engWEB2015eb) read with ``diatheke``.
- ``wordnet``: "lemma: example sentence" -> the WordNet gloss (term -> definition retrieval). From Debian
  ``wordnet-base`` (/usr/share/wordnet/data.{noun,verb,adj,adv}, WordNet 3.0).

Parsed pairs are cached as JSONL under ``$XDG_CACHE_HOME/contrastkit-bench``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "contrastkit-bench"
SOURCES = {
    "bible": "KJV (Debian bible-kjv-text) -> World English Bible (Debian sword-text-web, engWEB2015eb)",
    "wordnet": "WordNet 3.0 'lemma: example' -> gloss (Debian wordnet-base)",
}
INSTALL = "run `make bench-data` (apt-get install bible-kjv bible-kjv-text sword-text-web diatheke wordnet-base)"
_ROMAN = {"I": "1", "II": "2", "III": "3", "IV": "4"}


def _kjv() -> dict[str, str]:
    text = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    verses, book, chapter = {}, None, None
    for line in text.splitlines():
        if m := re.fullmatch(r"([1-3]? ?[A-Z][A-Za-z ]+) (\d+)", line.strip()):
            book, chapter = m.group(1), m.group(2)
        elif m := re.match(r"\s*(?:[A-Z][a-z]*)?(?:\d+:)?(\d+) (.+)", line):
            verses[f"{book} {chapter}:{m.group(1)}"] = m.group(2).strip()
    return verses


def _web() -> dict[str, str]:
    text = subprocess.run(["diatheke", "-b", "engWEB2015eb", "-f", "plain", "-k", "Genesis 1:1-Revelation 22:21"],
                          capture_output=True, text=True, check=True).stdout
    verses: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if m := re.match(r"\s*((?:I{1,3}|IV) )?([A-Z][A-Za-z ]+?) (\d+):(\d+): ?(.*)", line):
            book = (_ROMAN[m.group(1).strip()] + " " if m.group(1) else "") + m.group(2)
            book = {"Revelation of John": "Revelation"}.get(book, book)
            key = f"{book} {m.group(3)}:{m.group(4)}"
            verses[key] = m.group(5).strip()
        elif key and line.strip() and not line.startswith("("):
            verses[key] += " " + line.strip()
    return verses


def _bible() -> list[dict[str, str]]:
    kjv, web = _kjv(), _web()
    web["Revelation 22:21"] = web["Revelation 22:21"].split(" The following words")[0]  # glossary appended
    return [{"anchor": kjv[k], "positive": web[k]} for k in kjv if k in web and kjv[k] and web[k]]


def _wordnet() -> list[dict[str, str]]:
    rows, seen = [], set()
    for pos in ("noun", "verb", "adj", "adv"):
        for line in Path(f"/usr/share/wordnet/data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue  # licence header
            head, gloss = line.split("|", 1)
            lemma = head.split()[4].replace("_", " ")
            examples = re.findall(r'"([^"]+)"', gloss)
            definition = gloss.split(";")[0].strip()
            if not examples or not definition or definition in seen:
                continue
            seen.add(definition)
            rows.append({"anchor": f"{lemma}: {examples[0]}", "positive": definition})
    return rows


def load_pairs(name: str) -> list[dict[str, str]]:
    """All (anchor, positive) rows of a benchmark dataset, parsed once and cached."""
    path = CACHE / f"{name}.jsonl"
    if not path.exists():
        needed = {"bible": ("bible", "diatheke"), "wordnet": ()}[name]
        if any(shutil.which(t) is None for t in needed) or (name == "wordnet" and
                                                             not Path("/usr/share/wordnet/data.noun").exists()):
            raise SystemExit(f"dataset '{name}' is not installed; {INSTALL}")
        rows = _bible() if name == "bible" else _wordnet()
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [json.loads(x) for x in path.read_text().splitlines()]


def split(name: str, n_train: int, n_eval: int, seed: int = 0):
    """Disjoint random train/held-out ``datasets.Dataset`` pairs (no text of the held-out rows is trained on)."""
    from datasets import Dataset

    rows = load_pairs(name)
    random.Random(seed).shuffle(rows)
    held = rows[:n_eval]
    held_texts = {t for r in held for t in r.values()}
    train = [r for r in rows[n_eval:] if not held_texts & set(r.values())][:n_train]
    return Dataset.from_list(train), Dataset.from_list(held)


if __name__ == "__main__":
    for n in SOURCES:
        rows = load_pairs(n)
        words = sorted(len(r["anchor"].split()) + len(r["positive"].split()) for r in rows)
        print(f"{n}: {len(rows)} pairs; words per pair min {words[0]}, median {words[len(words) // 2]}, "
              f"max {words[-1]}; e.g. {rows[len(rows) // 3]}")

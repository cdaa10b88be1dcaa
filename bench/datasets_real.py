"""Real pair datasets for the text benchmarks, from Debian packages (`make bench-data` installs them).

- ``bible``: King James Version verse -> the same verse in the World English Bible (paraphrase retrieval,
  variable length: 2 to 90 words). KJV from Debian ``bible-kjv-text`` read with ``bible`` (package
  ``bible-kjv``); WEB from Debian ``sword-text-web`` (SWORD module engWEB2015eb) read with ``diatheke``.
- ``wordnet``: "lemma: example sentence" -> the WordNet gloss (term -> definition retrieval). From Debian
  ``wordnet-base`` (/usr/share/wordnet/data.{noun,verb,adj,adv}, WordNet 3.0).
- ``manpages``: a man page's NAME one-liner ("allocate and free dynamic memory") -> the start of its DESCRIPTION
  (the first ~60 words, as plain text): "what it does -> its documentation" retrieval. From the Linux man-pages
  project as packaged in Debian ``manpages`` and ``manpages-dev`` (only the pages ``dpkg -L`` lists for those two;
  ``.so`` redirects skipped).
- ``foldoc``: a computing term ("abstract interpretation") -> the first paragraph of its definition (cut at ~60 words,
  cross-reference braces and the ``<subject>`` tag dropped): term -> definition in a technical field. From the Free
  On-line Dictionary of Computing as packaged in Debian ``dict-foldoc`` (/usr/share/dictd/foldoc.dict.dz).

Parsed pairs are cached as JSONL under ``$XDG_CACHE_HOME/contrastkit-bench``.
"""

from __future__ import annotations

import gzip
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
    "manpages": "man page NAME one-liner -> start of its DESCRIPTION (Debian manpages, manpages-dev)",
    "foldoc": "FOLDOC computing term -> first paragraph of its definition (Debian dict-foldoc)",
}
INSTALL = ("run `make bench-data` (apt-get install bible-kjv bible-kjv-text sword-text-web diatheke wordnet-base "
           "manpages manpages-dev dict-foldoc)")
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


_MAN_PACKAGES = ("manpages", "manpages-dev")
_POSITIVE_WORDS = 60  # manpages and foldoc positives: the first ~60 words of the text
_GLYPHS = {"aq": "'", "cq": "'", "oq": "'", "dq": '"', "lq": '"', "rq": '"', "em": "--", "en": "-", "hy": "-",
           "bu": "*", "rs": "\\", "ti": "~", "ha": "^", "ga": "`", "sl": "/", "co": "(c)", "de": " degrees",
           "mu": "x", ">=": ">=", "<=": "<=", "!=": "!=", "->": "->", "<-": "<-", "**": "*", "pl": "+", "mi": "-",
           "eq": "=", "lh": "", "rh": ""}
_ESCAPE = re.compile(r"\\(?:\((..)|\[([^]\s]*)\]|\*(?:\(..|\[[^]]*\]|.)|f(?:\(..|\[[^]]*\]|.)"
                     r"|s[-+]?\d|[hvwoDlLxXbZ]'[^']*'|[kn](?:\(..|\[[^]]*\]|.)|\".*|(.))")
_FONT_MACROS = {"B", "I", "SM", "SB"}  # arguments joined by spaces
_ALT_MACROS = {"BR", "RB", "IR", "RI", "BI", "IB"}  # arguments joined without spaces (alternating fonts)


def _unroff(text: str) -> str:
    """Plain text from a line of roff: named glyphs mapped, font/size/motion escapes dropped."""
    def sub(m: re.Match) -> str:
        glyph = m.group(1) or m.group(2)
        if glyph is not None:
            if re.fullmatch(r"u[0-9A-F]{4,5}", glyph):
                return chr(int(glyph[1:], 16))
            return _GLYPHS.get(glyph, "")
        one = m.group(3)
        if one is None:
            return ""  # \f font, \* string, \s size, \h/\v motions, \k/\n registers, \" comment
        return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "'", "`": "`", ".": ".",
                "t": " "}.get(one, "")  # \& \% \: \| \^ \c ... -> nothing
    return _ESCAPE.sub(sub, text)


def _roff_args(rest: str) -> list[str]:
    """Macro arguments: blank-separated, "double quoted" ones may hold blanks ("" is a literal quote)."""
    return [a[1:-1].replace('""', '"') if a.startswith('"') else a
            for a in re.findall(r'"(?:[^"]|"")*"?|[^\s"]+', rest)]


def _man_sections(path: Path) -> dict[str, list[str]] | None:
    """Text lines of each ``.SH`` section of a gzipped man page (None for a bare ``.so`` redirect)."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8", "replace")
    lines = re.sub(r"(?<!\\)((?:\\\\)*)\\\n", r"\1", text).splitlines()  # join escaped newlines
    body = [x for x in lines if x.strip() and not x.startswith(('.\\"', "'\\\"", '\\"'))]
    if len(body) <= 1 and (not body or body[0].startswith(".so ")):
        return None
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    skip = False  # inside .nf/.fi, .EX/.EE or .TS/.TE: code, tables
    defining = False  # inside a .de/.ig block (a page's own macro definitions), which ends at ".."
    for line in body:
        if defining:
            defining = line.strip() != ".."
        elif line.startswith((".", "'")):
            macro, _, rest = line[1:].strip().partition(" ")
            if macro in ("de", "de1", "am", "ig"):
                defining = True
            elif macro == "SH":
                current = sections.setdefault(" ".join(_roff_args(rest)).upper(), [])
                skip = False
            elif macro in ("nf", "EX", "TS"):
                skip = True
            elif macro in ("fi", "EE", "TE"):
                skip = False
            elif current is not None and not skip and macro in _FONT_MACROS | _ALT_MACROS:
                args = _roff_args(rest)
                current.append(("" if macro in _ALT_MACROS else " ").join(args))
            elif current is not None and macro in ("PP", "P", "LP", "IP", "TP", "SS", "HP"):
                current.append("")  # paragraph break (.IP/.SS tags and headings dropped)
        elif current is not None and not skip:
            current.append(line)
    return sections


def _man_text(lines: list[str]) -> str:
    text = " ".join(_unroff(x) for x in lines if x)
    return re.sub(r"\s+", " ", text).strip()


def _manpages() -> list[dict[str, str]]:
    listed = subprocess.run(["dpkg", "-L", *_MAN_PACKAGES], capture_output=True, text=True, check=True).stdout
    pages = sorted(p for p in map(Path, listed.splitlines())
                   if re.fullmatch(r"/usr/share/man/man\d/[^/]+\.gz", str(p)) and p.is_file() and not p.is_symlink())
    rows, anchors, positives = [], set(), set()
    for page in pages:
        sections = _man_sections(page)
        if not sections:
            continue
        name = _man_text(sections.get("NAME", []))
        anchor = re.split(r"\s+-+\s+", name, maxsplit=1)[1].strip() if re.search(r"\s+-+\s+", name) else ""
        description = next((v for k, v in sections.items() if "DESCRIPTION" in k), [])
        words = _man_text(description).split()
        positive = " ".join(words[:_POSITIVE_WORDS])
        if not anchor or len(words) < 5 or anchor in anchors or positive in positives:
            continue
        anchors.add(anchor)
        positives.add(positive)
        rows.append({"anchor": anchor, "positive": positive})
    return rows


_FOLDOC = Path("/usr/share/dictd/foldoc.dict.dz")


def _foldoc() -> list[dict[str, str]]:
    """An entry is its headword at column 0 (alias lines may follow it, also at column 0), then the indented body;
    the body's first paragraph (up to the first blank line) is the definition."""
    text = gzip.decompress(_FOLDOC.read_bytes()).decode("utf-8", "replace")
    entries: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines():
        if line[:1].strip():  # column 0: a headword, or an alias of the one before when no body came yet
            if entries and not entries[-1][1]:
                entries[-1][0].append(line.strip())
            else:
                entries.append(([line.strip()], []))
        elif entries:
            entries[-1][1].append(line.strip())
    rows, anchors, positives = [], set(), set()
    for heads, body in entries:
        first = " ".join(("\n".join(body).strip() + "\n\n").split("\n\n")[0].split())
        first = re.sub(r"[{}]", "", re.sub(r"^<[^>]*>\s*", "", first))  # the <subject> tag, cross-reference braces
        words = first.split()
        positive = " ".join(words[:_POSITIVE_WORDS])
        head = heads[0]
        if head.startswith("00-database") or len(words) < 5 or head in anchors or positive in positives:
            continue  # the database header, and pure redirects ("{see X}")
        anchors.add(head)
        positives.add(positive)
        rows.append({"anchor": head, "positive": positive})
    return rows


def _installed(name: str) -> bool:
    """Whether the Debian packages behind ``name`` are there (what `make bench-data` installs)."""
    if name == "bible":
        return shutil.which("bible") is not None and shutil.which("diatheke") is not None
    if name == "manpages":
        return shutil.which("dpkg-query") is not None and \
            subprocess.run(["dpkg-query", "-W", *_MAN_PACKAGES], capture_output=True).returncode == 0
    return {"wordnet": Path("/usr/share/wordnet/data.noun"), "foldoc": _FOLDOC}[name].exists()


_PARSERS = {"bible": _bible, "wordnet": _wordnet, "manpages": _manpages, "foldoc": _foldoc}


def load_pairs(name: str) -> list[dict[str, str]]:
    """All (anchor, positive) rows of a benchmark dataset, parsed once and cached."""
    path = CACHE / f"{name}.jsonl"
    if not path.exists():
        if not _installed(name):
            raise SystemExit(f"dataset '{name}' is not installed; {INSTALL}")
        rows = _PARSERS[name]()
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

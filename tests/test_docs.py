"""The user docs against the code, mechanically: commands, keys, defaults, file paths and links that the docs
name must exist as named. Nothing here trains or imports torch; the whole file runs in under a second."""

from __future__ import annotations

import dataclasses
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from contrastkit.recipes import RECIPES
from contrastkit.recipes.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = set(build_parser().commands)
#: names the docs use for recipes that are not built in: placeholders and the plugin example of docs/plugins.md
NOT_BUILT_IN = {"RECIPE", "wordcount"}
#: words after "contrastkit" that are no command on purpose: cli.md's unknown-command example, a module map's prose
NOT_COMMANDS = {"runn", "command"}
#: keys that are wrong on purpose: cli.md's unknown-key example
NOT_KEYS = {("cli.md", "epoch")}
#: configs of the commands that take key=value besides run
COMMAND_CONFIGS = {"push": "contrastkit.plugins.hub:PushConfig",
                   "push-demo": "contrastkit.plugins.hub:PushDemoConfig",
                   "demo": "contrastkit.demo.app:DemoConfig"}
#: the Options tables (header "key" or "Option") of each page, and the config whose fields they name
TABLE_CONFIGS = {"text.md": "text", "speed.md": "text", "rerank.md": "rerank", "sparse.md": "sparse",
                 "image.md": "image", "hub.md": "push", "demo.md": "demo"}
#: files the docs name that a user writes, not the repository
USER_FILES = {"DEST.py", "my_text.py", "mine.py", "my_wordcount.py", "recipe.py"}


def _config(name: str) -> type:
    """The Config dataclass of a built-in recipe or a command."""
    if name in RECIPES:
        return importlib.import_module(RECIPES[name][0]).Config
    module, _, cls = COMMAND_CONFIGS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _fields(name: str) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(_config(name))}


#: a fenced code block's body
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


def _code(text: str) -> list[str]:
    """Every line of a fenced block and every inline code span, with shell comments and continuations joined."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    lines = [ln for block in blocks for ln in block.replace("\\\n", " ").splitlines()]
    return lines + re.findall(r"`([^`\n]+)`", prose)


def _invocations() -> list[tuple[str, str, list[str]]]:
    """(page, command, arguments) for each ``contrastkit COMMAND ...`` (or ``-m contrastkit.recipes``) in the docs."""
    found = []
    for page in DOCS:
        for line in _code(page.read_text(encoding="utf-8")):
            for match in re.finditer(r"(?:^|[\s$&;(])(?:contrastkit|-m contrastkit\.recipes)\s+([a-z][\w-]*)(.*)",
                                     line):
                rest = re.split(r"\s#|\s&&\s|;", match[2])[0]
                try:
                    args = shlex.split(rest)
                except ValueError:  # an unclosed quote in prose: split on spaces
                    args = rest.split()
                found.append((page.name, match[1], args))
    return found


def _keys(args: list[str]) -> list[str]:
    """The config keys among ``key=value`` arguments (``[model=...]`` in a synopsis counts as ``model``)."""
    keys = []
    for arg in args:
        arg = arg.lstrip("[")
        if "=" in arg and not arg.startswith("-"):
            key = arg.split("=", 1)[0]
            if re.fullmatch(r"[a-z_]+", key) and key != "key":
                keys.append(key)
    return keys


def test_every_documented_command_exists():
    used = {command for _, command, _ in _invocations()}
    assert {"run", "show", "list", "cp", "push", "push-demo", "demo"} <= used  # the scan itself works
    wrong = sorted({f"{page}: contrastkit {command}" for page, command, _ in _invocations()
                    if command not in COMMANDS | NOT_COMMANDS})
    assert not wrong, f"commands the CLI does not have: {wrong}"


def test_every_documented_key_is_a_field_of_its_config():
    wrong, checked = [], 0
    for page, command, args in _invocations():
        if command in ("run", "show", "cp"):
            if not args:  # "`contrastkit show` lists them": nothing to check
                continue
            recipe = args[0]
            if recipe.startswith(".") or recipe.endswith(".py") or recipe in NOT_BUILT_IN:
                continue
            if recipe not in RECIPES:
                wrong.append(f"{page}: contrastkit {command} {recipe} (no such recipe)")
                continue
            name = recipe
        elif command in COMMAND_CONFIGS:
            name = command
        else:
            continue
        fields = _fields(name)
        for key in _keys(args[1:] if command == "run" else args):
            checked += 1
            if key not in fields and (page, key) not in NOT_KEYS:
                wrong.append(f"{page}: contrastkit {command} ... {key}= ({name} has no such key)")
    assert checked > 50, checked
    assert not wrong, "\n".join(wrong)


def test_python_snippets_use_real_config_keys():
    wrong, checked = [], 0
    for page in DOCS:
        text = page.read_text(encoding="utf-8")
        for module, call, inner in re.findall(r"\b(text|rerank|sparse|image|image_text)\.(run|Config)\(([^)]*)\)",
                                              text):
            fields = _fields(module.replace("_", "-"))
            for key in re.findall(r"(?:^|[(,]\s*)(\w+)=", inner):
                checked += 1
                if key not in fields:
                    wrong.append(f"{page.name}: {module}.{call}({key}=...)")
    assert checked >= 5, checked
    assert not wrong, wrong


def _option_tables(text: str) -> list[list[list[str]]]:
    """The rows (as cells) of each table whose first header cell is 'key' or 'Option'."""
    tables, rows = [], None
    for line in text.splitlines() + [""]:
        if not line.startswith("|"):
            rows = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if rows is None:
            rows = [] if cells[0].lower() in ("key", "option") else False
            if rows is not False:
                tables.append(rows)
        elif rows is not False and not set(cells[0]) <= set("-: "):
            rows.append(cells)
    return tables


def _table_keys(cell: str) -> list[str]:
    return [span.split("=")[0] for span in re.findall(r"`([^`]+)`", cell) if re.fullmatch(r"[a-z_]+(=.*)?", span)]


@pytest.mark.parametrize("page", sorted(TABLE_CONFIGS))
def test_option_tables_name_real_keys_with_their_defaults(page):
    fields = _fields(TABLE_CONFIGS[page])
    tables = _option_tables((ROOT / "docs" / page).read_text(encoding="utf-8"))
    assert tables, f"no Options table found in {page}"
    wrong = []
    for row in (r for t in tables for r in t):
        keys = _table_keys(row[0])
        wrong += [f"{page}: `{k}`" for k in keys if k not in fields]
        default = re.fullmatch(r"`([^`]*)`", row[1])
        if len(keys) == 1 and keys[0] in fields and default:
            actual = fields[keys[0]].default
            if actual is None or actual == "":  # the recipe decides; the table says what it picks
                continue
            written = yaml.safe_load(default[1])
            same = written == actual or str(written) == str(actual)
            if not same:
                wrong.append(f"{page}: `{keys[0]}` default `{default[1]}`, the code's is {actual!r}")
    assert not wrong, "\n".join(wrong)


#: repository paths in code spans and blocks: tests/..., bench/..., recipes/configs/...
PATH = re.compile(r"(?<![\w./-])((?:recipes|plugins|demo|tests|bench|docs|\.ci)/[\w./*{},-]*[\w*}/])")


def _exists(path: str) -> bool:
    path = re.sub(r"\{[^}]*\}|SETTING|NAME|N(?=\.)", "*", path.rstrip("/"))
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_every_repository_path_the_docs_name_exists():
    wrong, checked = [], 0
    for page in DOCS:
        for line in _code(page.read_text(encoding="utf-8")):
            for path in PATH.findall(line):
                checked += 1
                if not _exists(path):
                    wrong.append(f"{page.name}: {path}")
    assert checked > 30, checked
    assert not wrong, "\n".join(wrong)


def test_every_named_test_exists():
    wrong = []
    for page in DOCS:
        for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", page.read_text(encoding="utf-8")):
            if not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), flags=re.MULTILINE):
                wrong.append(f"{page.name}: {path}::{name}")
    assert not wrong, wrong


def test_every_python_file_the_docs_name_exists():
    """``hub.py``, ``inputs.py``: a module named in prose exists somewhere in the repository."""
    names = {p.name for p in ROOT.glob("**/*.py") if ".venv" not in p.parts}
    wrong = sorted({f"{page.name}: {name}" for page in DOCS
                    for name in re.findall(r"(?<![\w/.-])(\w+\.py)\b", page.read_text(encoding="utf-8"))
                    if name not in names and name not in USER_FILES})
    assert not wrong, wrong


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_to_a_page_and_its_section_resolves():
    wrong, checked = [], 0
    for page in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            checked += 1
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                wrong.append(f"{page.name}: {target}")
            elif anchor:
                headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), flags=re.MULTILINE)
                if anchor not in {_slug(h) for h in headings}:
                    wrong.append(f"{page.name}: {target} (no such section)")
    assert checked > 20, checked
    assert not wrong, wrong


def _module_map(text: str, first_line: str) -> dict[str, str]:
    """The fenced block that holds ``first_line``, as {entry: its text}: an entry is a line that starts at the left
    margin or two spaces in ('plugins/', '  hub/'), with the deeper-indented lines that continue it."""
    block = next(b for b in FENCE.findall(text) if first_line in b)
    entries: dict[str, str] = {}
    name = ""
    for line in block.splitlines():
        match = re.match(r"^( {0,2})(\S+)", line)
        if match:
            name = (entries and match[1] and name.split(" ")[0] + " " or "") + match[2]
            entries[name] = ""
        entries[name] += " " + line
    return entries


def _listed(entries: dict[str, str], folder: str) -> str:
    """The text of the module map's entry for ``folder`` ('plugins', 'plugins/hub'), '' when it has none."""
    top, _, sub = folder.partition("/")
    return entries.get(f"{top}/ {sub}/" if sub else f"{top}/", "")


@pytest.mark.parametrize("page, first_line", [("docs/plugins.md", "recipes/            contrastkit.recipes"),
                                              ("README.md", "recipes/   contrastkit.recipes")])
def test_the_module_maps_list_every_module(page, first_line):
    """docs/plugins.md's 'Where things live' names every module of every package, the README's Development block
    every module of recipes/, plugins/ (its subpackages by name) and demo/."""
    entries = _module_map((ROOT / page).read_text(encoding="utf-8"), first_line)
    missing = []
    for folder in ("recipes", "plugins", "plugins/hub", "plugins/st", "plugins/vision", "demo"):
        if page == "README.md" and "/" in folder:
            text = _listed(entries, folder.split("/")[0])
            missing += [] if f"{folder.split('/')[1]}/" in text else [f"{folder}/"]
            continue
        text = _listed(entries, folder) if page == "README.md" or "/" in folder else \
            " ".join(v for k, v in entries.items() if k.startswith(f"{folder}/"))
        for module in sorted((ROOT / folder).glob("*.py")):
            if module.stem in ("__init__", "__main__"):
                continue
            wanted = rf"(?<![\w.]){module.stem}\b" if "/" in folder or page == "README.md" else rf"\b{module.name}\b"
            if not re.search(wanted, text):
                missing.append(f"{folder}/{module.name}")
    assert not missing, f"{page} does not name: {missing}"


def test_the_bad_input_case_count_the_docs_give_is_the_matrix():
    from tests.recipes.test_bad_inputs import CASES

    counts = {page.name: re.findall(r"(\d+) cases", page.read_text(encoding="utf-8"))
              for page in (ROOT / "README.md", ROOT / "docs" / "scale-out.md")}
    assert all(counts.values()), counts
    assert all(int(n) == len(CASES) for found in counts.values() for n in found), (counts, len(CASES))

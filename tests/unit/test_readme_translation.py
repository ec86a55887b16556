"""README.md and the docs/ pages stay in step with their Chinese translations.

Each English file has its twin: README.md and README.zh-CN.md, docs/<page>.md and
docs/zh-CN/<page>.md. The two files of a pair must have the same structure: the same headings (levels, in order), the same fenced
code blocks byte for byte, the same inline code spans in each section (settings keys, commands,
paths, values), the same tables (rows, and the code in each row's first column), the same numbers
in each section, and links that resolve: `(#anchor)` to a heading of their own file, `(page.md#anchor)`
to a file that exists and a heading of it.

Each check is a function that takes the two texts and returns a list of problems, each saying
what is missing where, so that a change to one README that the other lacks fails the suite with
the section and the span to add. Run this file directly to print every difference at once:

    .venv/bin/python tests/unit/test_readme_translation.py

Pure Python: no Pulumi, no Docker.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[2]
ENGLISH = ROOT / "README.md"
CHINESE = ROOT / "README.zh-CN.md"
DOCS = ROOT / "docs"
PAIRS = [(ENGLISH, CHINESE), *((page, DOCS / "zh-CN" / page.name) for page in sorted(DOCS.glob("*.md")))]
"""Each English file and its translation."""
SETTINGS = (DOCS / "configuration.md", DOCS / "zh-CN" / "configuration.md")
"""The pages holding the settings reference."""

_MARKDOWN = MarkdownIt("commonmark").enable("table")
_HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.:]\d+)*")


@dataclass
class Table:
    """A pipe table: its header row and body rows, each a list of raw cells."""

    line: int
    rows: list[list[str]]


@dataclass
class Section:
    """A heading and what follows it up to the next heading (the preamble has level 0)."""

    level: int
    title: str
    line: int
    prose: list[str] = field(default_factory=list)
    fences: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    """Its inline code spans, as CommonMark reads them."""
    words: list[str] = field(default_factory=list)
    """Its text outside code spans and link targets."""
    links: list[str] = field(default_factory=list)
    """The target of each of its links."""

    @property
    def name(self) -> str:
        if self.level == 0:
            return "(text before the first heading)"
        return f"{'#' * self.level} {self.title} (line {self.line})"

    @property
    def text(self) -> str:
        """The section's text outside code blocks, heading included."""
        return "\n".join(self.prose)

    def code_spans(self) -> Counter[str]:
        return Counter(self.code)

    def numbers(self) -> Counter[str]:
        return Counter(_NUMBER.findall(" ".join(self.words)))

    def signature(self) -> tuple:
        """What must be equal in both languages: used to pair the sections of the two files."""
        return (self.level, tuple(self.fences), tuple(sorted(self.code_spans().items())))


def code_spans(text: str) -> list[str]:
    """The inline code spans of one line of Markdown (a table cell), as CommonMark reads them."""
    return [child.content for token in _MARKDOWN.parseInline(text) for child in token.children or [] if child.type == "code_inline"]


def parse(markdown: str) -> list[Section]:
    """Split Markdown into sections at its headings, as markdown-it-py reads it (CommonMark with
    tables): each section's prose (its lines outside fenced code, its title first), its fenced
    blocks as written, and its tables' rows of cells (the delimiter row is not a row)."""
    lines = markdown.split("\n")
    tokens = _MARKDOWN.parse(markdown)
    headings = {
        token.map[0]: Section(level=int(token.tag[1:]), title=tokens[index + 1].content, line=token.map[0] + 1)
        for index, token in enumerate(tokens)
        if token.type == "heading_open" and token.map
    }
    fenced = {number for token in tokens if token.type == "fence" and token.map for number in range(*token.map)}
    sections = [Section(level=0, title="", line=0)]
    section_of_line: list[Section] = []
    for number, line in enumerate(lines):
        if number in headings:
            sections.append(headings[number])
            sections[-1].prose.append(sections[-1].title)
        elif number not in fenced:
            sections[-1].prose.append(line)
        section_of_line.append(sections[-1])
    row: list[str] | None = None
    for index, token in enumerate(tokens):
        if token.type == "fence" and token.map:
            section_of_line[token.map[0]].fences.append("\n".join(lines[token.map[0]:token.map[1]]))
        elif token.type == "table_open" and token.map:
            section_of_line[token.map[0]].tables.append(Table(line=token.map[0] + 1, rows=[]))
        elif token.type == "tr_open" and token.map:
            row = []
            section_of_line[token.map[0]].tables[-1].rows.append(row)
        elif token.type == "inline" and token.map:
            section = section_of_line[token.map[0]]
            for child in token.children or []:
                if child.type == "code_inline":
                    section.code.append(child.content)
                elif child.type == "text":
                    section.words.append(child.content)
                elif child.type == "link_open":
                    # markdown-it percent-encodes a target; headings' anchors are compared as written.
                    section.links.append(unquote(str(child.attrGet("href"))))
            if row is not None and tokens[index - 1].type in ("th_open", "td_open"):
                row.append(token.content)
        elif token.type == "tr_close":
            row = None
    return sections


def slug(title: str) -> str:
    """GitHub's anchor for a heading: rendered text lowercased, punctuation dropped
    (letters of every script, digits, '_' and '-' kept), each space a '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", title)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.lower()
    text = "".join(char for char in text if char.isalnum() or char in "_- " or _is_mark(char))
    return text.replace(" ", "-")


def _is_mark(char: str) -> bool:
    import unicodedata

    return unicodedata.category(char).startswith("M")


def anchors(sections: list[Section]) -> set[str]:
    """Every anchor a file defines: its headings' (numbered like GitHub's when repeated) and
    explicit `<a id=...>` / `<a name=...>` ones."""
    seen: Counter[str] = Counter()
    result = set()
    for section in sections:
        if section.level:
            base = slug(section.title)
            result.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
        result.update(_HTML_ANCHOR.findall(section.text))
    return result


# --- the checks: each returns a list of problems, empty when the two files agree -------------


def check_headings(english: str, chinese: str) -> list[str]:
    """(a) The same number of sections and the same sequence of heading levels."""
    en, zh = parse(english)[1:], parse(chinese)[1:]
    problems = []
    if len(en) != len(zh):
        problems.append(f"README.md has {len(en)} headings, README.zh-CN.md {len(zh)}")
    for index, (left, right) in enumerate(zip(en, zh) if len(en) == len(zh) else ()):
        if left.level != right.level:
            problems.append(
                f"heading {index + 1}: README.md's {left.name} is level {left.level}, "
                f"README.zh-CN.md's {right.name} is level {right.level}"
            )
            break
    return problems + [p for p in _unpaired(english, chinese)]


def _pairs(english: str, chinese: str) -> tuple[list[tuple[Section, Section]], list[str]]:
    """Pair the sections of the two files (by level, code blocks and code spans, so that a
    section added to one file shows as missing from the other instead of shifting every
    later section), and describe the sections left without a partner."""
    en, zh = parse(english), parse(chinese)
    matcher = difflib.SequenceMatcher(
        None, [s.signature() for s in en], [s.signature() for s in zh], autojunk=False
    )
    pairs, unpaired = [], []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(en[i1:i2], zh[j1:j2]))
            continue
        left, right = list(en[i1:i2]), list(zh[j1:j2])
        # Sections that differ only in content: pair them in order while their levels agree.
        while left and right and left[0].level == right[0].level:
            pairs.append((left.pop(0), right.pop(0)))
        while left and right and left[-1].level == right[-1].level:
            pairs.append((left.pop(), right.pop()))
        after_zh = zh[j1 - 1].name if j1 > 0 else "the start"
        after_en = en[i1 - 1].name if i1 > 0 else "the start"
        for section in left:
            unpaired.append(
                f"README.md's section {section.name} has no counterpart in README.zh-CN.md "
                f"(translate it after {after_zh})"
            )
        for section in right:
            unpaired.append(
                f"README.zh-CN.md's section {section.name} has no counterpart in README.md "
                f"(after {after_en})"
            )
    return pairs, unpaired


def _unpaired(english: str, chinese: str) -> list[str]:
    return _pairs(english, chinese)[1]


def check_code_blocks(english: str, chinese: str) -> list[str]:
    """(b) The same fenced code blocks, in order, byte for byte."""
    en = [(s, block) for s in parse(english) for block in s.fences]
    zh = [(s, block) for s in parse(chinese) for block in s.fences]
    problems = []
    if len(en) != len(zh):
        problems.append(f"README.md has {len(en)} code blocks, README.zh-CN.md {len(zh)}")
    matcher = difflib.SequenceMatcher(None, [b for _, b in en], [b for _, b in zh], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for section, block in en[i1:i2]:
            problems.append(
                f"code block of README.md's {section.name} is not in README.zh-CN.md "
                f"byte for byte:\n{block}"
            )
        for section, block in zh[j1:j2]:
            problems.append(
                f"code block of README.zh-CN.md's {section.name} is not in README.md "
                f"byte for byte:\n{block}"
            )
    return problems


def check_inline_code(english: str, chinese: str) -> list[str]:
    """(c) The same inline code spans, as many times each, in each pair of sections."""
    problems = []
    for left, right in _pairs(english, chinese)[0]:
        en, zh = left.code_spans(), right.code_spans()
        for span, count in sorted((en - zh).items()):
            problems.append(
                f"`{span}` is in README.md's {left.name} {count} more time(s) than in "
                f"README.zh-CN.md's {right.name}"
            )
        for span, count in sorted((zh - en).items()):
            problems.append(
                f"`{span}` is in README.zh-CN.md's {right.name} {count} more time(s) than in "
                f"README.md's {left.name}"
            )
    return problems


def _row_keys(table: Table) -> list[str]:
    """Each body row's first cell, as its code spans (a settings key, a role, a command) or,
    when it has none, '(row N)'."""
    keys = []
    for number, row in enumerate(table.rows[1:], start=1):
        spans = code_spans(row[0]) if row else []
        keys.append(", ".join(f"`{span}`" for span in spans) if spans else f"(row {number})")
    return keys


def check_tables(english: str, chinese: str) -> list[str]:
    """(d) The same tables in each pair of sections: the same columns, and the same rows with
    the same code in their first column (so every settings key is in both reference tables)."""
    problems = []
    for left, right in _pairs(english, chinese)[0]:
        if len(left.tables) != len(right.tables):
            problems.append(
                f"README.md's {left.name} has {len(left.tables)} table(s), "
                f"README.zh-CN.md's {right.name} {len(right.tables)}"
            )
            continue
        for en, zh in zip(left.tables, right.tables):
            where = f"the table at README.md line {en.line} / README.zh-CN.md line {zh.line}"
            if en.rows and zh.rows and len(en.rows[0]) != len(zh.rows[0]):
                problems.append(
                    f"{where} has {len(en.rows[0])} columns in English, {len(zh.rows[0])} in Chinese"
                )
            en_keys, zh_keys = _row_keys(en), _row_keys(zh)
            missing = [key for key in en_keys if key not in zh_keys]
            extra = [key for key in zh_keys if key not in en_keys]
            for key in missing:
                problems.append(f"{where}: row {key} of README.md is missing from README.zh-CN.md")
            for key in extra:
                problems.append(f"{where}: row {key} of README.zh-CN.md is not in README.md")
            if not missing and not extra and en_keys != zh_keys:
                problems.append(f"{where}: the rows are in another order ({en_keys} / {zh_keys})")
            for number, row in enumerate(zh.rows, start=0):
                if en.rows and len(row) != len(en.rows[0]):
                    problems.append(
                        f"{where}: README.zh-CN.md row {number} has {len(row)} cells, "
                        f"not {len(en.rows[0])}"
                    )
    return problems


def check_numbers(english: str, chinese: str) -> list[str]:
    """The same figures (numbers outside code) in each pair of sections."""
    problems = []
    for left, right in _pairs(english, chinese)[0]:
        en, zh = left.numbers(), right.numbers()
        for number, count in sorted((en - zh).items()):
            problems.append(
                f"the figure {number} is in README.md's {left.name} {count} more time(s) than in "
                f"README.zh-CN.md's {right.name}"
            )
        for number, count in sorted((zh - en).items()):
            problems.append(
                f"the figure {number} is in README.zh-CN.md's {right.name} {count} more time(s) "
                f"than in README.md's {left.name}"
            )
    return problems


def check_anchor_links(text: str, name: str, path: Path | None = None) -> list[str]:
    """(e) Every in-document link `(#anchor)` of one file points to a heading of that file; with
    the file's `path`, every link to another page (`page.md#anchor`) to a page that exists and,
    when it names an anchor, to a heading of that page."""
    sections = parse(text)
    defined = anchors(sections)
    problems = []
    for section in sections:
        for target in (link for link in section.links if link.startswith("#")):
            if target[1:] not in defined:
                problems.append(
                    f"{name}'s {section.name} links to {target}, which no heading of {name} "
                    f"defines"
                )
        if path is None:
            continue
        for page, _, anchor in (link.partition("#") for link in section.links if _is_page(link)):
            target = f"#{anchor}" if anchor else ""
            linked = (path.parent / page).resolve()
            if not linked.is_file():
                problems.append(f"{name}'s {section.name} links to {page}, which does not exist")
            elif target and target[1:] not in anchors(parse(linked.read_text(encoding="utf-8"))):
                problems.append(f"{name}'s {section.name} links to {page}{target}, which no heading of {page} defines")
    return problems


def _is_page(link: str) -> bool:
    """A link to another page of the repository (`page.md`, `../README.md#anchor`)."""
    return ":" not in link and link.partition("#")[0].endswith(".md")


def _relative(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start.parent)).as_posix()


def check_language_links(english: str, chinese: str, pair: tuple[Path, Path] = (ENGLISH, CHINESE)) -> list[str]:
    """Each file links to the other in its first lines."""
    problems = []
    en_path, zh_path = pair
    to_chinese, to_english = _relative(zh_path, en_path), _relative(en_path, zh_path)
    if f"({to_chinese})" not in "\n".join(english.split("\n")[:5]):
        problems.append(f"{en_path.name} does not link to {to_chinese} in its first lines")
    if f"({to_english})" not in "\n".join(chinese.split("\n")[:5]):
        problems.append(f"{zh_path.name} does not link to {to_english} in its first lines")
    return problems


def all_problems(english: str, chinese: str, pair: tuple[Path, Path] = (ENGLISH, CHINESE)) -> list[str]:
    en_path, zh_path = pair
    return (
        check_language_links(english, chinese, pair)
        + check_headings(english, chinese)
        + check_code_blocks(english, chinese)
        + check_inline_code(english, chinese)
        + check_tables(english, chinese)
        + check_numbers(english, chinese)
        + check_anchor_links(english, _name(en_path), en_path)
        + check_anchor_links(chinese, _name(zh_path), zh_path)
    )


# --- the tests ---------------------------------------------------------------------------------


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _read(pair: tuple[Path, Path] = (ENGLISH, CHINESE)) -> tuple[str, str]:
    return pair[0].read_text(encoding="utf-8"), pair[1].read_text(encoding="utf-8")


def _report(problems: list[str], pair: tuple[Path, Path] = (ENGLISH, CHINESE)) -> str:
    return f"{_name(pair[0])} and {_name(pair[1])} are not in step:\n- " + "\n- ".join(problems)


def test_every_page_has_its_translation() -> None:
    assert len(PAIRS) > 1, "no docs/ pages"
    missing = [_name(zh) for _, zh in PAIRS if not zh.is_file()]
    extra = [page.name for page in (DOCS / "zh-CN").glob("*.md") if not (DOCS / page.name).is_file()]
    assert not missing and not extra, f"pages without their translation: {missing}; translations without a page: {extra}"


def test_the_readme_links_to_every_page() -> None:
    for readme, docs in ((ENGLISH, DOCS), (CHINESE, DOCS / "zh-CN")):
        text = readme.read_text(encoding="utf-8")
        unlinked = [page.name for page in docs.glob("*.md") if f"({_relative(page, readme)})" not in text]
        assert not unlinked, f"{readme.name} does not link to {unlinked}"


CHECKS = {
    "both files link to each other": lambda english, chinese, pair: check_language_links(english, chinese, pair),
    "same headings": lambda english, chinese, pair: check_headings(english, chinese),
    "same code blocks": lambda english, chinese, pair: check_code_blocks(english, chinese),
    "same inline code per section": lambda english, chinese, pair: check_inline_code(english, chinese),
    "same tables and settings keys": lambda english, chinese, pair: check_tables(english, chinese),
    "same figures per section": lambda english, chinese, pair: check_numbers(english, chinese),
    "links resolve": lambda english, chinese, pair: check_anchor_links(english, _name(pair[0]), pair[0])
    + check_anchor_links(chinese, _name(pair[1]), pair[1]),
}


@pytest.mark.parametrize("check", CHECKS, ids=list(CHECKS))
@pytest.mark.parametrize("pair", PAIRS, ids=[_name(english) for english, _ in PAIRS])
def test_the_translation_is_in_step(pair: tuple[Path, Path], check: str) -> None:
    problems = CHECKS[check](*_read(pair), pair)
    assert not problems, _report(problems, pair)


def _settings_keys(text: str) -> list[str]:
    """The keys of the settings reference table (the one whose first rows are `environment`
    and `profile`), in order."""
    for section in parse(text):
        for table in section.tables:
            keys = _row_keys(table)
            if keys[:2] == ["`environment`", "`profile`"]:
                return keys
    return []


def test_the_settings_reference_holds_the_same_keys() -> None:
    english, chinese = _read(SETTINGS)
    en, zh = _settings_keys(english), _settings_keys(chinese)
    assert len(en) >= 60, "the settings reference table of docs/configuration.md was not found"
    missing = [key for key in en if key not in zh]
    extra = [key for key in zh if key not in en]
    assert not missing, f"settings keys of docs/configuration.md missing from its translation's table: {missing}"
    assert not extra, f"settings keys of docs/zh-CN/configuration.md not in docs/configuration.md's table: {extra}"
    assert en == zh, "the settings reference rows are in another order"


# --- each check can fail: a broken copy of a README is reported --------------------------------


def _break(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, f"the mutation's anchor {old!r} is no longer in the README"
    return text.replace(old, new, count)


def test_a_missing_section_is_reported(tmp_path: Path) -> None:
    english, chinese = _read()
    added = english + "\n## Firewall\n\nOpen only `80` and `443` (`firewall.enabled`).\n"
    copy = tmp_path / "README.md"
    copy.write_text(added, encoding="utf-8")
    problems = check_headings(copy.read_text(encoding="utf-8"), chinese)
    assert any("README.md has" in p for p in problems), problems
    assert any("## Firewall" in p and "no counterpart in README.zh-CN.md" in p for p in problems), problems
    # The sections before it still pair up: nothing else is reported.
    assert not check_inline_code(added, chinese)


def test_a_changed_heading_level_is_reported() -> None:
    english, chinese = _read()
    broken = _break(chinese, "\n## ", "\n### ")
    assert any("level" in p for p in check_headings(english, broken))


def test_a_changed_code_block_is_reported(tmp_path: Path) -> None:
    english, chinese = _read()
    copy = tmp_path / "README.zh-CN.md"
    copy.write_text(_break(chinese, "scripts/deploy.sh dev\n```", "scripts/deploy.sh  dev\n```"), encoding="utf-8")
    problems = check_code_blocks(english, copy.read_text(encoding="utf-8"))
    assert any("scripts/deploy.sh  dev" in p and "README.zh-CN.md" in p for p in problems), problems


def test_a_setting_added_to_one_file_is_reported(tmp_path: Path) -> None:
    english, chinese = _read(SETTINGS)
    row = "| `backup.enabled` | "
    added = _break(english, row, "| `backup.compression` | `zstd` | how archives are compressed |\n" + row)
    copy = tmp_path / "README.md"
    copy.write_text(added, encoding="utf-8")
    text = copy.read_text(encoding="utf-8")
    spans = check_inline_code(text, chinese)
    assert any("`backup.compression`" in p and "## Settings reference" in p for p in spans), spans
    rows = check_tables(text, chinese)
    assert any("`backup.compression`" in p and "missing from README.zh-CN.md" in p for p in rows), rows


def test_a_settings_key_dropped_from_the_translation_is_reported() -> None:
    english, chinese = _read(SETTINGS)
    broken = "\n".join(
        line for line in chinese.split("\n") if not line.startswith("| `backup.timeout_minutes` |")
    )
    assert "`backup.timeout_minutes`" in _settings_keys(english)
    assert "`backup.timeout_minutes`" not in _settings_keys(broken)
    rows = check_tables(english, broken)
    assert any("`backup.timeout_minutes`" in p and "missing from README.zh-CN.md" in p for p in rows), rows


def test_a_command_dropped_from_the_translation_is_reported() -> None:
    english, chinese = _read((DOCS / "monitoring.md", DOCS / "zh-CN" / "monitoring.md"))
    broken = _break(chinese, "`scripts/status.sh <stack>`", "scripts/status.sh")
    problems = check_inline_code(english, broken)
    assert any("`scripts/status.sh <stack>`" in p for p in problems), problems


def test_a_changed_figure_is_reported() -> None:
    english, chinese = _read()
    broken = _break(chinese, "3792", "3892")
    problems = check_numbers(english, broken)
    assert any("3792" in p for p in problems) and any("3892" in p for p in problems), problems


def test_a_broken_anchor_link_is_reported() -> None:
    english, chinese = _read()
    broken = english + "\nSee [Nowhere](#nowhere).\n"
    assert any("#nowhere" in p for p in check_anchor_links(broken, "README.md"))
    chinese = _read(SETTINGS)[1]
    target = re.search(r"\]\((#[^)]+)\)", chinese).group(1)
    broken = chinese.replace(f"]({target})", "](#images)")
    assert any("#images" in p for p in check_anchor_links(broken, "docs/zh-CN/configuration.md"))


def test_a_link_to_a_missing_page_or_heading_is_reported() -> None:
    english = _read()[0]
    assert not check_anchor_links(english, "README.md", ENGLISH)
    missing_page = english.replace("(docs/swarm.md)", "(docs/cluster.md)")
    assert any("docs/cluster.md, which does not exist" in p for p in check_anchor_links(missing_page, "README.md", ENGLISH))
    missing_heading = english + "\nSee [backups](docs/backups.md#nowhere).\n"
    problems = check_anchor_links(missing_heading, "README.md", ENGLISH)
    assert any("docs/backups.md#nowhere, which no heading" in p for p in problems), problems


def test_a_missing_language_link_is_reported() -> None:
    english, chinese = _read()
    broken = english.replace("(README.zh-CN.md)", "(README.zh.md)")
    assert check_language_links(broken, chinese)


def test_slugs_follow_github() -> None:
    assert slug("The next `pulumi up`") == "the-next-pulumi-up"
    assert slug("Upgrades and rolling back") == "upgrades-and-rolling-back"
    assert slug("1. 系统要求和准备工作") == "1-系统要求和准备工作"
    assert slug("数据库的内存（上限）") == "数据库的内存上限"
    assert slug("Docker 部署") == "docker-部署"


if __name__ == "__main__":
    reports = [_report(found, pair) for pair in PAIRS if (found := all_problems(*_read(pair), pair))]
    print("\n".join(reports) if reports else "README.md, the docs/ pages and their translations are in step.")
    sys.exit(1 if reports else 0)

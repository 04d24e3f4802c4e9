"""Pointers into docs/ stay true.

Comments, docstrings and the READMEs cite the design decisions and exchange facts as
`docs/<file>.md#<anchor>`. This fails when a pointer names a file or a heading that does not
exist, when a link inside docs/ is broken, and when a citation by section number of the old
design note or reference (documents that were never in the repository) comes back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SELF = Path(__file__).resolve()

SCANNED_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".ini", ".cfg", ".mako", ".sh", ".txt"}
SCANNED_NAMES = {"Dockerfile", "Makefile"}
SKIPPED_DIRS = {"__pycache__", "node_modules"}
# What `pip install .` or `python -m build` leave at the top (gitignored copies of the sources).
BUILD_OUTPUT = {ROOT / "build", ROOT / "dist"}

# "design note §4", "Design §3", "reference §1.3", "Reference §1.3's", "the §3 table", "(§4)".
OLD_CITATION = re.compile(r"(?:\b(?:design(?:\s+note)?|reference)(?:'s)?\s*\(?§)|§\s*\d", re.I)
# docs/<file>.md with an optional #anchor, not preceded by a path (so "x/docs/y.md" is not ours).
POINTER = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)(?:#([\w-]+))?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def scanned_files() -> Iterator[Path]:
    """Every text file of the repository that can hold a pointer: sources, tests, READMEs,
    configuration. Hidden directories (.venv, .git, state dirs), caches and build output are
    left out."""
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                name = entry.name
                if (name.startswith(".") or name in SKIPPED_DIRS or name.endswith(".egg-info")
                        or entry in BUILD_OUTPUT):
                    continue
                stack.append(entry)
            elif entry.suffix in SCANNED_SUFFIXES or entry.name in SCANNED_NAMES:
                if entry.resolve() != SELF:
                    yield entry


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def _plain(heading: str) -> str:
    """A heading's text as rendered: code spans, links and emphasis reduced to their text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "")
    return re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case; every character other than letters, digits,
    underscores, hyphens and spaces dropped; each space turned into a hyphen."""
    text = _plain(heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a markdown document's headings (outside code fences); a repeated heading
    gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def _where(path: Path, text: str, offset: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, offset) + 1}"


def _problem(target: Path, anchor: str | None) -> str | None:
    """Why a pointer to `target`#`anchor` is broken, or None when it is not."""
    if not target.is_file():
        return f"no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
    if anchor and anchor not in anchors(_text(target)):
        return f"no heading with anchor #{anchor} in {target.relative_to(ROOT)}"
    return None


# --- the anchor rule itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Precision at the boundary", "precision-at-the-boundary"),
        ("TP/SL endpoints", "tpsl-endpoints"),
        ("Dedupe, ordering and workflow ids", "dedupe-ordering-and-workflow-ids"),
        ("Trading-pair fields", "trading-pair-fields"),
        ("One input model, one result model", "one-input-model-one-result-model"),
        ("The `order` row's status", "the-order-rows-status"),
        ("5b. Operations", "5b-operations"),
        ("snake_case **bold** [link](x.md)", "snake_case-bold-link"),
    ],
)
def test_anchor_rule_matches_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors() -> None:
    text = "# A\n## Notes\n```\n## Not a heading\n```\n## Notes\n"
    assert anchors(text) == {"a", "notes", "notes-1"}


# --- the repository ----------------------------------------------------------------------------


def test_no_citation_of_the_old_notes_remains() -> None:
    stale = [
        f"{_where(path, text, m.start())}: {m.group(0)!r}"
        for path in scanned_files()
        for text in [_text(path)]
        for m in OLD_CITATION.finditer(text)
    ]
    assert stale == [], (
        "cite docs/<file>.md#<section> instead of a numbered section of a document that is "
        f"not in the repository: {stale}"
    )


def test_every_docs_pointer_names_an_existing_file_and_heading() -> None:
    pointers = 0
    broken = []
    for path in scanned_files():
        text = _text(path)
        for m in POINTER.finditer(text):
            pointers += 1
            problem = _problem(DOCS / m.group(1), m.group(2))
            if problem:
                broken.append(f"{_where(path, text, m.start())}: {m.group(0)}: {problem}")
    assert broken == [], f"broken pointers into docs/: {broken}"
    # The scan really reads the code: the rewritten citations are there to be found.
    assert pointers >= 50, f"only {pointers} pointers into docs/ found; is the scan reading files?"


def test_links_inside_docs_resolve() -> None:
    broken = []
    for page in sorted(DOCS.glob("*.md")):
        text = _text(page)
        for m in MARKDOWN_LINK.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            if resolved.is_dir() or resolved.suffix != ".md":
                if not resolved.exists():
                    broken.append(f"{_where(page, text, m.start())}: {target}: does not exist")
                continue
            problem = _problem(resolved, anchor or None)
            if problem:
                broken.append(f"{_where(page, text, m.start())}: {target}: {problem}")
    assert broken == [], f"broken links in docs/: {broken}"


def test_the_index_lists_every_document_and_the_readme_links_it() -> None:
    index = _text(DOCS / "README.md")
    unlisted = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "README.md"
                and f"]({p.name})" not in index]
    assert unlisted == [], f"list these in docs/README.md: {unlisted}"
    assert "](docs/README.md)" in _text(ROOT / "README.md")


# A repository path in backticks: a top-level folder or module of ours, then more path.
CODE_SPAN = re.compile(r"`([a-z_]+(?:/[\w.*-]*)*(?:\.py|/))`")


def _tree_paths_in(markdown: str) -> list[tuple[int, str]]:
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    return [(m.start(), m.group(1)) for m in CODE_SPAN.finditer(markdown)
            if m.group(1).split("/")[0] in top or "/" not in m.group(1)]


def test_paths_the_readmes_and_docs_name_exist() -> None:
    """A file or folder named in the READMEs or docs/ (`webhook/temporal.py`, `paper/`) exists:
    a move must take its mentions along."""
    missing = []
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = _text(page)
        for offset, path in _tree_paths_in(text):
            if not any(ROOT.glob(path.rstrip("/"))):
                missing.append(f"{_where(page, text, offset)}: {path}")
    assert missing == [], f"paths that do not exist: {missing}"


def test_the_path_check_reads_the_paths_it_should() -> None:
    found = [p for _, p in _tree_paths_in("`webhook/temporal.py`, `paper/`, `cli.py`, `x/y.py`, `GET /x/`")]
    assert found == ["webhook/temporal.py", "paper/", "cli.py"]

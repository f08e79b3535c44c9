"""
The docs: every code example in them and in the README runs, and the site builds strictly.

Conventions for pages (docs/ and README.md):

* A ````python```` block is executed here, the blocks of one page in order and in one
  namespace, from a scratch directory. A line ``--8<-- "path"`` inside it includes that
  file (pymdownx.snippets does the same when the site is built).
* A ````python title="test_<name>.py"```` block is a pytest file: it is run by pytest, with
  the pendo-webhooks plugin, and all of its tests must pass.
* A ````pycon```` block is a doctest: pytest's ``--doctest-glob=*.md`` runs the docs' pages,
  and this module runs the README's.
* Blocks in any other language (``sh``, ``text``, ``json``) are not run.
"""

from __future__ import annotations

import doctest
import hashlib
import html
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import pendo_webhooks
from pendo_webhooks.events import EventCategory, to_wire
from pendo_webhooks.testing import sample_event


pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
# With the package installed, its pytest11 entry point loads the plugin in every session.
_PLUGIN_INSTALLED = bool(importlib.metadata.entry_points(group="pytest11", name="pendo_webhooks"))
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _load_extension() -> Any:
    path = DOCS / "_ext" / "griffe_markdown.py"
    spec = importlib.util.spec_from_file_location("docs_griffe_markdown", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


to_markdown = _load_extension().to_markdown

_FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.MULTILINE | re.DOTALL,
)
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')
_SNIPPET = re.compile(r'^(?P<indent>[ ]*)--8<-- "(?P<path>[^"]+)"[ ]*$', re.MULTILINE)


@attrs.frozen
class Block:
    """
    One fenced block of a page: its language, first line number and text.
    """

    language: str
    line: int
    code: str
    title: str = ""

    @property
    def is_pytest_file(self) -> bool:
        """
        Whether the block is a pytest file (``title="test_*.py"``), run by pytest.
        """
        return self.language == "python" and re.fullmatch(r"test_\w+\.py", self.title) is not None


def blocks(text: str) -> list[Block]:
    """
    The fenced blocks of a Markdown page, dedented, with snippet lines expanded.
    """
    found = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        code = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        code = _SNIPPET.sub(lambda m: _include(m["path"], m["indent"]), code)
        info = match["info"].strip()
        language = info.split()[0].lstrip("{.") if info else ""
        title = _TITLE.search(info)
        line = text.count("\n", 0, match.start()) + 2
        found.append(Block(language, line, code, title["title"] if title else ""))
    return found


def _include(path: str, indent: str) -> str:
    text = (ROOT / path).read_text(encoding="utf-8")
    return "".join(indent + line for line in text.splitlines(keepends=True))


def _pages() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), README]


def _python_pages() -> list[Path]:
    return [
        page
        for page in _pages()
        if any(b.language == "python" and not b.is_pytest_file for b in blocks(page.read_text()))
    ]


def _pytest_files() -> list[tuple[Path, Block]]:
    return [
        (page, block)
        for page in _pages()
        for block in blocks(page.read_text())
        if block.is_pytest_file
    ]


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", _python_pages(), ids=_id)
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Each page's python blocks run in order, in one namespace, from a scratch directory.
    """
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_example_{page.stem.replace('-', '_')}"}
    ran = 0
    for block in blocks(page.read_text(encoding="utf-8")):
        if block.language != "python" or block.is_pytest_file:
            continue
        # Pad with newlines so tracebacks point at the page's own line numbers.
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        exec(code, namespace)  # noqa: S102 - our own documentation's examples
        ran += 1
    assert ran > 0


@pytest.mark.parametrize(
    ("page", "block"), _pytest_files(), ids=lambda v: v.title if isinstance(v, Block) else _id(v)
)
def test_pytest_examples_pass(page: Path, block: Block, pytester: pytest.Pytester) -> None:
    """
    Each pytest file shown in the docs passes under pytest, with the plugin's fixtures.
    """
    pytester.makepyfile(**{block.title[:-3]: block.code})
    plugin = () if _PLUGIN_INSTALLED else ("-p", "pendo_webhooks.pytest_plugin")
    # The plugin module is already imported here, too late for pytest to rewrite its asserts.
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
    result = pytester.runpytest(*plugin, *quiet, "--strict-markers", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0, result.stdout.str()
    assert set(outcomes) == {"passed"}, result.stdout.str()


def test_readme_doctests_run() -> None:
    """
    The README's pycon examples pass as doctests (pytest collects only docs/ pages itself).
    """
    text = README.read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0


def test_the_wire_page_shows_every_body_exactly() -> None:
    """
    The wire-format page holds the exact body of every event type's sample, byte for byte.
    """
    page = (DOCS / "reference" / "wire-format.md").read_text(encoding="utf-8")
    for category in EventCategory:
        body = to_wire(sample_event(category)).decode()
        assert f"\n{body}\n" in page, category
        assert f"### `{category.value}`" in page
    assert hashlib.sha256(to_wire(sample_event("guideDisplayed"))).hexdigest() in page


def test_fences_and_snippets_are_read_as_the_site_reads_them() -> None:
    """
    blocks() finds indented fences, their language and line, and expands snippet lines.
    """
    text = (
        'Intro\n\n```python title="x"\nprint(1)\n```\n\n'
        "* item\n\n    ```pycon\n    >>> 1\n    1\n    ```\n"
    )
    python, pycon = blocks(text)
    assert (python.language, python.line, python.code) == ("python", 4, "print(1)\n")
    assert (pycon.language, pycon.line, pycon.code) == ("pycon", 10, ">>> 1\n1\n")
    (included,) = blocks('```python\n  --8<-- "examples/receiver_flask.py"\n```\n')
    assert "def make_receiver(" in included.code
    assert included.code.startswith("  ")


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """
    mkdocs build --strict succeeds: no broken link, no unlisted page, no docstring warning.
    """
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reference" / "wire-format" / "index.html").is_file()
    api = (tmp_path / "api" / "events" / "index.html").read_text(encoding="utf-8")
    assert ":class:`" not in api  # Sphinx roles became links
    assert 'class="language-pycon' in api or "highlight" in api
    pages = {p.parent.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("api/*/*.html")}
    assert {"dispatcher", "events", "registry", "storage", "testing"} <= pages.keys()
    assert private_names_shown(pages) == {}
    # Long signatures are formatted (by ruff, in the docs extra), one parameter a line.
    registry = _text(pages["registry"])
    assert "create(\n    actor: Actor,\n    *,\n    name: str,\n" in registry


# A code example in a docstring (not a signature) may use private names of its own.
_EXAMPLE = re.compile(r'<div class="highlight"><pre>.*?</pre></div>', re.DOTALL)
# Where an API page shows names of the library itself: headings, signatures, "Bases:".
_API_PARTS = re.compile(
    r'<h\d[^>]*class="doc doc-heading"[^>]*>.*?</h\d>'
    r'|<div class="doc-signature highlight">.*?</pre>'
    r'|<p class="doc doc-class-bases">.*?</p>',
    re.DOTALL,
)
_UNDERSCORED = re.compile(r"(?<![\w.])_[A-Za-z]\w*")


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def hidden_classes() -> set[str]:
    """
    The names of the classes defined in a private module of the package (``_models``,
    ``storage._sqlite_outbox``) that no public module exports, in ``__all__`` or lazily.
    """
    public, private = [], []
    for info in pkgutil.walk_packages(pendo_webhooks.__path__, "pendo_webhooks."):
        if info.name.endswith("__main__"):
            continue  # runs the CLI
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # pragma: no cover - PostgreSQL's driver is not installed
            continue
        is_private = any(part.startswith("_") for part in info.name.split("."))
        (private if is_private else public).append(module)
    public.append(pendo_webhooks)

    def exported(name: str, cls: type) -> bool:
        for module in public:
            if name in getattr(module, "__all__", ()):
                return True
            if name not in vars(module) and getattr(module, name, None) is cls:
                return True  # imported on first use, like storage.PostgresStorage
        return False

    return {
        name
        for module in private
        for name, cls in vars(module).items()
        if inspect.isclass(cls) and cls.__module__ == module.__name__ and not exported(name, cls)
    }


def private_names_shown(pages: dict[str, str]) -> dict[str, list[str]]:
    """
    By API page: the private classes it shows anywhere but in a code example, and the names
    starting with ``_`` in its headings, signatures and "Bases:" lines.
    """
    hidden = hidden_classes()
    assert "_Envelope" in hidden
    assert "AdminReads" in hidden  # a private module's class without an underscore
    shown = {}
    for name, page in pages.items():
        words = set(re.findall(r"\b\w+\b", _text(_EXAMPLE.sub("", page))))
        parts = _text("\n".join(_API_PARTS.findall(page)))
        found = sorted((words & hidden) | set(_UNDERSCORED.findall(parts)))
        if found:
            shown[name] = found
    return shown


def test_private_names_are_found_where_the_api_pages_show_them() -> None:
    """
    private_names_shown() finds a private base, a private type in a signature and a hidden
    class in prose, and passes over the private names of a code example.
    """
    page = (
        '<h2 class="doc doc-heading" id="x">NpsSubmitted</h2>'
        '<p class="doc doc-class-bases">Bases: <code>_GuideEvent</code></p>'
        '<div class="doc-signature highlight"><pre><code>f(x: <span>_Body</span>)</code></pre>'
        "</div><p>Built on SQLiteOutbox.</p>"
        '<div class="highlight"><pre><code>self._fernet = AdminReads()</code></pre></div>'
    )
    assert private_names_shown({"p": page}) == {"p": ["SQLiteOutbox", "_Body", "_GuideEvent"]}
    assert private_names_shown({"p": "<p>Dispatcher and <code>_prod</code></p>"}) == {}


#: Notes kept outside this repository (in the team's shared folder): never cite them.
_OUTSIDE_FILES = ("WIRE.md", "RELIABILITY.md", "DESIGN.md", "STYLE.md", "ANCHORS.md")


def _published_files() -> list[Path]:
    found = [README, *sorted((ROOT / "examples").rglob("*.py"))]
    found += sorted(p for p in (ROOT / "src").rglob("*.py"))
    found += sorted(p for p in DOCS.rglob("*") if p.is_file() and p.suffix != ".pyc")
    return found


def test_no_docstring_or_page_cites_a_file_outside_the_repository() -> None:
    """
    src/, docs/, examples/ and README.md cite only files in this repository: a NAME.md they
    mention exists here, and the team's notes (WIRE.md, RELIABILITY.md, ...) are not cited.
    """
    folders = (ROOT / "benchmarks", DOCS, ROOT / "examples", ROOT / "tests")
    in_repo = {p.name for p in ROOT.glob("*.md")}
    in_repo |= {p.name for folder in folders for p in folder.rglob("*.md")}
    cited = {}
    for path in _published_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in re.findall(r"\b[A-Z][A-Z0-9_-]*\.md\b", text):
            if name in _OUTSIDE_FILES or name not in in_repo:
                cited.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    assert cited == {}


class TestDocstringsAsMarkdown:
    @pytest.mark.parametrize(
        ("text", "module", "identifier", "title"),
        [
            (":class:`~pendo_webhooks.events.App`", "m", "pendo_webhooks.events.App", "App"),
            (
                ":func:`pendo_webhooks.events.to_wire`",
                "m",
                "pendo_webhooks.events.to_wire",
                "pendo_webhooks.events.to_wire",
            ),
            (
                ":class:`Secret`",
                "pendo_webhooks.signing",
                "pendo_webhooks.signing.Secret",
                "Secret",
            ),
            (":meth:`threading.Event.wait`", "m", "threading.Event.wait", "threading.Event.wait"),
            (
                ":meth:`the check <DestinationPolicy.check_url>`",
                "pendo_webhooks.guard",
                "pendo_webhooks.guard.DestinationPolicy.check_url",
                "the check",
            ),
            (
                ":py:data:`.DEFAULT_TOLERANCE`",
                "pendo_webhooks.signing",
                "pendo_webhooks.signing.DEFAULT_TOLERANCE",
                ".DEFAULT_TOLERANCE",
            ),
        ],
    )
    def test_roles_become_optional_cross_references(
        self, text: str, module: str, identifier: str, title: str
    ) -> None:
        """
        A Sphinx role becomes an optional autoref to the resolved target, titled as in Sphinx.
        """
        assert to_markdown(text, module) == (
            f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'
        )

    def test_doctests_are_fenced_without_directives(self) -> None:
        """
        A run of prompt lines and output becomes a pycon fence; doctest directives are dropped.
        """
        text = "Example:\n\n    >>> f(1)  # doctest: +ELLIPSIS\n    2\n\nAfter."
        assert to_markdown(text, "m") == (
            "Example:\n\n    ```pycon\n    >>> f(1)\n    2\n    ```\n\nAfter."
        )

    def test_existing_fences_are_left_alone(self) -> None:
        """
        Prompt lines already inside a fence are not fenced again.
        """
        text = "```pycon\n>>> 1\n1\n```"
        assert to_markdown(text, "m") == text

    def test_literal_blocks_become_text_fences(self) -> None:
        """
        'text::' and the indented block after it become 'text:' and a text fence.
        """
        text = "Tree::\n\n    A\n      B\n\nEnd."
        assert to_markdown(text, "m") == "Tree:\n\n```text\nA\n  B\n```\n\nEnd."
        assert to_markdown("Alone::\n\nNext.", "m") == "Alone:\n\nNext."
        assert to_markdown("::\n\n    code", "m") == "\n```text\ncode\n```\n"

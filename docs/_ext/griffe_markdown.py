"""
A griffe extension for the API pages: the library's docstrings, rewritten as Markdown.

The docstrings follow Sphinx habits (``:class:`~pendo_webhooks.events.App```, bare ``>>>``
examples, ``::`` literal blocks), which read well in a terminal and in ``help()``;
mkdocstrings renders Markdown. Before griffe parses each docstring, this rewrites:

* a Sphinx role into an optional cross-reference (a link when the target is documented,
  plain code otherwise, never a broken link);
* a run of ``>>>`` lines and their output into a ``pycon`` fence, without ``# doctest:``
  directives;
* a paragraph ending in ``::`` and the indented block after it into a ``text`` fence.

It also lists, for each class, the bases a reader can look up (``extra["pendo_webhooks"]
["public_bases"]``): not ``_Envelope``, nor a mixin of a private module that no public
module exports. ``docs/_templates/python/material/class.html.jinja`` shows only those in
"Bases:", while inherited members still come from every base.

mkdocs.yml loads it with ``extensions: [docs/_ext/griffe_markdown.py]``.
"""

from __future__ import annotations

import html
import re
import sys
from typing import Any

import griffe


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|exc|mod|obj|const):`(?P<text>[^`]+)`")
_TITLED = re.compile(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>")
_DIRECTIVE = re.compile(r"\s*# doctest:.*$")
_PACKAGE = "pendo_webhooks"
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _identifier(target: str, module: str) -> str:
    target = target.lstrip(".")
    head = target.split(".", 1)[0]
    if head == _PACKAGE or head in sys.stdlib_module_names:
        return target
    return f"{module}.{target}"


def _autoref(text: str, module: str) -> str:
    """
    Turn the text of one Sphinx role into an optional autorefs cross-reference.
    """
    text = text.strip()
    titled = _TITLED.fullmatch(text)
    if titled:
        title, target = titled["title"], titled["target"].lstrip("~")
    elif text.startswith("~"):
        target = text[1:]
        title = target.rsplit(".", 1)[-1]
    else:
        title = target = text
    identifier = html.escape(_identifier(target, module), quote=True)
    return (
        f'<autoref identifier="{identifier}" optional><code>{html.escape(title)}</code></autoref>'
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _fence_doctests(lines: list[str]) -> list[str]:
    out: list[str] = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        pad = " " * _indent(line)
        if out and out[-1].strip():
            out.append("")
        out.append(f"{pad}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(_DIRECTIVE.sub("", lines[i]))
            i += 1
        out.append(f"{pad}```")
    return out


def _fence_literal_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        intro = line.rstrip()[:-2].rstrip()
        if intro.strip():
            out.append(intro + ":")
        base = _indent(line)
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block: list[str] = []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            block.append(lines[j])
            j += 1
        while block and not block[-1].strip():
            block.pop()
        if not block:  # "::" with nothing indented after it: only the colon stays
            i += 1
            continue
        cut = min(_indent(b) for b in block if b.strip())
        pad = " " * base
        out += ["", f"{pad}```text", *(pad + b[cut:] for b in block), f"{pad}```", ""]
        i = j
    return out


def to_markdown(text: str, module: str) -> str:
    """
    Rewrite one docstring's Sphinx roles, doctests and literal blocks as Markdown.

    Args:
        text: The docstring, cleaned (``inspect.cleandoc``).
        module: The dotted path of the module it is in, for relative role targets.

    >>> print(to_markdown("See :class:`~pendo_webhooks.events.App`.", "m"))
    See <autoref identifier="pendo_webhooks.events.App" optional><code>App</code></autoref>.
    >>> to_markdown("Text\\n>>> 1 + 1\\n2", "m").split("\\n")
    ['Text', '', '```pycon', '>>> 1 + 1', '2', '```']
    """
    text = _ROLE.sub(lambda match: _autoref(match["text"], module), text)
    lines = _fence_literal_blocks(text.split("\n"))
    return "\n".join(_fence_doctests(lines))


class MarkdownDocstrings(griffe.Extension):
    """
    Rewrite every docstring with :func:`to_markdown` once the object tree is complete.
    """

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """
        Record, on each class of the package, the bases that "Bases:" may show.
        """
        del kwargs
        public = _public_names(pkg)
        for cls in _classes(pkg):
            shown = [base for base in cls.bases if is_public_base(base, public)]
            cls.extra["pendo_webhooks"]["public_bases"] = shown

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """
        Rewrite *obj*'s docstring, if it has one.
        """
        del kwargs
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value, obj.module.path)


def _is_private_path(path: str) -> bool:
    return any(part.startswith("_") for part in path.split("."))


def _public_names(module: griffe.Module) -> set[str]:
    """
    The names in the ``__all__`` of *module* and of every public module below it.
    """
    names: set[str] = set()
    if not _is_private_path(module.path):
        names.update(str(name) for name in module.exports or ())
    for submodule in module.modules.values():
        names |= _public_names(submodule)
    return names


def _classes(module: griffe.Module) -> list[griffe.Class]:
    found = [m for m in module.members.values() if not m.is_alias and m.is_class]
    for cls in list(found):
        found.extend(_nested_classes(cls))
    for submodule in module.modules.values():
        found.extend(_classes(submodule))
    return found


def _nested_classes(cls: Any) -> list[Any]:
    nested = [m for m in cls.members.values() if not m.is_alias and m.is_class]
    for inner in list(nested):
        nested.extend(_nested_classes(inner))
    return nested


def is_public_base(base: object, public: set[str]) -> bool:
    """
    Whether a class base is worth showing: no private name in it, and if it lives in a
    private module of this package, a name that a public module exports.
    """
    text = str(base)
    if any(name.startswith("_") for name in _IDENTIFIER.findall(text)):
        return False
    path = str(getattr(base, "canonical_path", text))
    if path.split(".", 1)[0] != _PACKAGE or not _is_private_path(path):
        return True
    return path.rsplit(".", 1)[-1] in public

"""docs/troubleshooting.md's generated parts: each error class and every message it is raised with.

`python -m zoopm.cli.troubleshooting docs/troubleshooting.md` rewrites the page in place.

The rule the page keeps (and tests/integration/test_docs_site.py checks):

- ZoopmError and every subclass of it defined in zoopm has a section headed `## ClassName`, with
  words of its own saying what the error means and how to fix it;
- below them, between `<!-- generated: ClassName -->` and `<!-- end generated -->`, the class's
  exit code and default hint, and every message template the code constructs it with: each
  call `ClassName(message, hint)` in zoopm's source, the message as written there (an f-string's
  `{expression}` parts kept as they are, module constants filled in), with its hint when the
  call gives one. A call `type(error)(…)` keeps the class of the error it wraps, which may be
  any: its message is listed under ZoopmError.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import zoopm
from zoopm.atomic import atomic_write
from zoopm.errors import ZoopmError

REGENERATE = "python -m zoopm.cli.troubleshooting docs/troubleshooting.md"

_HEADING = re.compile(r"^## (.*)$", flags=re.MULTILINE)
_CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")
_BLOCK = re.compile(
    r"<!-- generated: (?P<name>[A-Za-z]+) -->\n.*?<!-- end generated -->\n", flags=re.DOTALL
)


@dataclass(frozen=True)
class Message:
    """One way the code constructs an error: its message template and hint template."""

    template: str
    hint: str | None


def error_classes() -> dict[str, type[ZoopmError]]:
    """ZoopmError and every subclass of it that zoopm's modules define, by class name."""
    for module in pkgutil.walk_packages(zoopm.__path__, "zoopm."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: dict[str, type[ZoopmError]] = {"ZoopmError": ZoopmError}
    pending: list[type[ZoopmError]] = [ZoopmError]
    while pending:
        for sub in pending.pop().__subclasses__():
            if not sub.__module__.startswith("zoopm."):
                continue
            other = found.setdefault(sub.__name__, sub)
            if other is not sub:
                raise ValueError(f"two error classes are named {sub.__name__}")
            pending.append(sub)
    return found


def messages(names: set[str]) -> dict[str, list[Message]]:
    """Every message template each class is constructed with in zoopm's source."""
    found: dict[str, set[Message]] = {name: set() for name in names}
    root = Path(zoopm.__file__).parent
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants = _constants(path.relative_to(root.parent))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _class_called(node.func)
            if name not in names:
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
            message = node.args[0] if node.args else keywords.get("message")
            hint = node.args[1] if len(node.args) > 1 else keywords.get("hint")
            if message is None:
                continue
            found[name].add(
                Message(
                    _template(message, constants),
                    None if hint is None else _template(hint, constants),
                )
            )
    order = lambda m: (m.template, m.hint or "")  # noqa: E731
    return {name: sorted(items, key=order) for name, items in found.items()}


def _class_called(callee: ast.expr) -> str | None:
    """The class a call constructs; `type(error)(…)` keeps error's class: any, so ZoopmError."""
    if isinstance(callee, ast.Name):
        return callee.id
    if isinstance(callee, ast.Attribute):
        return callee.attr
    if (
        isinstance(callee, ast.Call)
        and isinstance(callee.func, ast.Name)
        and callee.func.id == "type"
    ):
        return "ZoopmError"
    return None


def _constants(relative: Path) -> dict[str, str]:
    """The module's constants (UPPER_CASE names bound to a string or number), as text."""
    name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
    module = sys.modules.get(name)
    if module is None or name.endswith("__main__"):
        return {}
    return {
        key: str(value)
        for key, value in vars(module).items()
        if _CONSTANT.fullmatch(key) and isinstance(value, str | int) and not isinstance(value, bool)
    }


def _template(node: ast.expr, constants: dict[str, str]) -> str:
    """The text node makes, with constants filled in and other expressions as {expression}."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                inner = _template(value.value, constants)
                plain = isinstance(value.value, ast.Name) and value.value.id in constants
                parts.append(inner if plain else "{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return "{" + ast.unparse(node) + "}"


def block(cls: type[ZoopmError], found: list[Message]) -> str:
    """The generated part of cls's section."""
    parent = cls.__mro__[1].__name__
    lines = [
        f"<!-- generated: {cls.__name__} -->",
        "",
        f"Exit code {cls.exit_code}."
        + (f" A kind of [{parent}](#{parent.lower()})." if cls is not ZoopmError else ""),
        "",
        f"Hint when the message gives none: {_code(cls.default_hint) if cls.default_hint else '—'}",
        "",
    ]
    if found:
        lines += ["Messages (`{…}` is filled in with a path, name, key or value):", ""]
        for item in found:
            hint = "" if item.hint is None else f" — hint: {_code(item.hint)}"
            lines.append(f"- {_code(item.template)}{hint}")
    else:
        lines.append("zoopm constructs no error of this class itself.")
    lines += ["", "<!-- end generated -->", ""]
    return "\n".join(lines)


def _code(text: str) -> str:
    """text as a Markdown code span, whatever backticks it holds."""
    one_line = " ".join(text.split())
    fence = "`"
    while fence in one_line:
        fence += "`"
    pad = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def missing_sections(page: str, classes: dict[str, type[ZoopmError]]) -> list[str]:
    """The classes without a `## ClassName` section."""
    headed = {title.strip() for title in _HEADING.findall(page)}
    return sorted(name for name in classes if name not in headed)


def stray_sections(page: str, classes: dict[str, type[ZoopmError]]) -> list[str]:
    """Headings of one capitalised word (the form of a class name) that name no error class."""
    headed = {title.strip() for title in _HEADING.findall(page)}
    return sorted(h for h in headed if re.fullmatch(r"[A-Z][A-Za-z]*", h) and h not in classes)


def regenerate(page: str) -> str:
    """page with every class section's generated block written again from the code."""
    classes = error_classes()
    found = messages(set(classes))
    missing = missing_sections(page, classes)
    if missing:
        raise ValueError(
            f"no section for {', '.join(missing)}: add '## Name' with what it means and the fix"
        )
    page = _BLOCK.sub("", page)
    sections = list(_HEADING.finditer(page))
    out: list[str] = []
    position = 0
    for index, heading in enumerate(sections):
        end = sections[index + 1].start() if index + 1 < len(sections) else len(page)
        out.append(page[position:end])
        name = heading.group(1).strip()
        if name in classes:
            body = out.pop()
            out.append(body.rstrip("\n") + "\n\n" + block(classes[name], found[name]) + "\n")
        position = end
    out.append(page[position:])
    return "".join(out).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        text = regenerate(path.read_text(encoding="utf-8"))
    except ValueError as error:
        print(f"error: {path}: {error}", file=sys.stderr)
        return 1
    atomic_write(path, text.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

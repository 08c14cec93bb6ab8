"""readme.md frontmatter: parse it into ModelInfo, and set one key in place."""

from __future__ import annotations

import bisect
import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml
from yaml.reader import Reader, ReaderError

from zoopm.digest import is_sha1_hex
from zoopm.errors import ModelInfoError

KNOWN_KEYS = (
    "name",
    "caffemodel",
    "caffemodel_url",
    "sha1",
    "caffe_commit",
    "caffe_version",
    "gist_id",
    "license",
)

README_NAME = "readme.md"
INFO_HEAD_BYTES = 1024 * 1024
URL_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class ModelInfo:
    """What a model's readme.md says about it; every value is text (sha1 in lower case)."""

    name: str | None
    caffemodel: str | None
    caffemodel_url: str | None
    sha1: str | None
    caffe_commit: str | None
    caffe_version: str | None
    gist_id: str | None
    license: str | None
    extra: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


# --- hints ------------------------------------------------------------------------------------

_HINT_FORMAT = (
    "start readme.md with a line '---', then one 'key: value' per line "
    "(caffemodel, caffemodel_url, sha1, ...), then '---'; docs/model-info.md"
)
_HINT_ONE_MODEL = (
    "a readme describes one model: give each model its own directory with its own readme.md"
)
_HINT_LINES = "write one 'key: value' per line; put a value holding ': ' in double quotes"
_HINT_TEXT = "write the value as one line of text after the key, e.g. 'license: BSD 2-Clause'"
_HINT_SHA1 = "write the SHA-1 of the .caffemodel file (sha1sum prints it) or remove the line"
_HINT_CAFFEMODEL = "name the binary inside the model directory, e.g. 'bvlc_alexnet.caffemodel'"
_HINT_URL = "write the full download URL, starting with https:// or http://"
_HINT_SET = "edit the frontmatter of readme.md by hand"

# --- reading the text -------------------------------------------------------------------------

_BREAK = re.compile(r"\r\n|\r|\n")
_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_BLANKS = " \t"


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based, in the whole file
    start: int  # offset of the first character in the decoded text
    text: str  # without its line ending
    ending: str  # "\n", "\r\n", "\r", or "" for a last line without one

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def stripped(self) -> str:
        return self.text.strip(_BLANKS)

    @property
    def indent(self) -> int:
        return len(self.text) - len(self.text.lstrip(_BLANKS))


@dataclass(frozen=True)
class _Document:
    text: str  # decoded, without the byte order mark
    encoding: str  # "utf-8" or "latin-1"; encoding text gives back the bytes exactly
    bom: bytes
    lines: tuple[_Line, ...]
    warnings: tuple[str, ...]

    @property
    def newline(self) -> str:
        return next((line.ending for line in self.lines if line.ending), "\n")

    def encode(self, text: str) -> bytes:
        return self.bom + text.encode(self.encoding)


def _decode(data: bytes, source: str) -> _Document:
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    body = data[len(bom) :]
    warnings: list[str] = []
    try:
        text = body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError as exc:
        # Latin-1 maps every byte to one character, so nothing is lost and encoding gives
        # back the same bytes; only the few non-ASCII characters may read wrongly.
        text = body.decode("latin-1")
        encoding = "latin-1"
        line = len(_BREAK_BYTES.findall(body, 0, exc.start)) + 1
        warnings.append(
            f"{source}:{line}: not UTF-8 (byte 0x{body[exc.start]:02X}); read as Latin-1"
        )
    lines: list[_Line] = []
    position = 0
    for match in _BREAK.finditer(text):
        lines.append(_Line(len(lines) + 1, position, text[position : match.start()], match[0]))
        position = match.end()
    if position < len(text):
        lines.append(_Line(len(lines) + 1, position, text[position:], ""))
    return _Document(text, encoding, bom, tuple(lines), tuple(warnings))


def _show(value: str) -> str:
    """A value quoted for a one-line message."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


# --- the entries of a frontmatter -------------------------------------------------------------

_SQUASHED_KEYS = {key.replace("_", ""): key for key in KNOWN_KEYS}


def _canonical(written: str) -> str:
    """The known key that `written` means ('Caffemodel URL' -> 'caffemodel_url'), else itself."""
    if written in KNOWN_KEYS:
        return written
    return _SQUASHED_KEYS.get(re.sub(r"[\s_.-]+", "", written.lower()), written)


@dataclass(frozen=True)
class _Entry:
    written: str  # the key as the file writes it
    value: str  # stripped text; a list or mapping flattened to one line
    shape: str  # "text", "list" or "mapping"
    line: int  # the key's line
    start: int  # the value's span in the decoded text: replacing it changes the value
    end: int
    lead: str  # what goes between start and a new value (" " when the value is empty)

    @property
    def key(self) -> str:
        return _canonical(self.written)


@dataclass(frozen=True)
class _Block:
    """Where the model information lies: a frontmatter, or `key: value` lines without one."""

    entries: tuple[_Entry, ...]
    first_line: int
    last_line: int
    insert_at: int  # a new line goes here, after a line ending
    insert_ending: str
    warnings: tuple[str, ...]


class _StringLoader(yaml.SafeLoader):
    """A safe loader that reads every scalar as text: no int, float, bool, null or date."""


# Without implicit resolvers every plain scalar gets the str tag, so '0123', '1e5', 'yes' and
# an empty value stay text exactly as written (converting numbers back would lose '0123').
_StringLoader.yaml_implicit_resolvers = {}


@dataclass(frozen=True)
class _YamlProblem:
    problem: str
    line: int


@dataclass(frozen=True)
class _YamlView:
    """The frontmatter lines as handed to YAML, and the way back to the file's offsets."""

    lines: tuple[_Line, ...]
    strip: bool
    texts: tuple[str, ...]
    starts: tuple[int, ...]
    text: str

    @classmethod
    def of(cls, lines: tuple[_Line, ...], strip: bool) -> _YamlView:
        texts = tuple(line.stripped if strip else line.text for line in lines)
        starts: list[int] = []
        position = 0
        for text in texts:
            starts.append(position)
            position += len(text) + 1
        return cls(lines, strip, texts, tuple(starts), "".join(text + "\n" for text in texts))

    def _row(self, index: int) -> int:
        return min(max(bisect.bisect_right(self.starts, index) - 1, 0), len(self.lines) - 1)

    def line_number(self, index: int) -> int:
        return self.lines[self._row(index)].number

    def same_row(self, first: int, second: int) -> bool:
        return self._row(first) == self._row(second)

    def offset(self, index: int) -> int:
        """The offset in the decoded text of the character at `index` of the YAML text."""
        row = self._row(index)
        line = self.lines[row]
        column = min(max(index - self.starts[row], 0), len(self.texts[row]))
        return line.start + (line.indent if self.strip else 0) + column


class _Flattener:
    """Writes a list or mapping on one line, with a length limit (aliases can nest widely)."""

    LIMIT = 300

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text)

    def walk(self, node: yaml.Node) -> None:
        if self.size >= self.LIMIT:
            return
        if isinstance(node, yaml.ScalarNode):
            self.add(str(node.value).strip())
            return
        pairs = (
            node.value if isinstance(node, yaml.MappingNode) else [(None, v) for v in node.value]
        )
        self.add("{" if isinstance(node, yaml.MappingNode) else "[")
        for index, (key, value) in enumerate(pairs):
            if self.size >= self.LIMIT:
                break
            if index:
                self.add(", ")
            if key is not None:
                self.walk(key)
                self.add(": ")
            self.walk(value)
        self.add("}" if isinstance(node, yaml.MappingNode) else "]")

    def text(self) -> str:
        text = "".join(self.parts)
        return text if self.size < self.LIMIT else text[: self.LIMIT] + "..."


def _node_text(node: yaml.Node) -> tuple[str, str]:
    if isinstance(node, yaml.ScalarNode):
        return str(node.value).strip(), "text"
    flattener = _Flattener()
    flattener.walk(node)
    return flattener.text(), "mapping" if isinstance(node, yaml.MappingNode) else "list"


def _compose(text: str) -> yaml.Node | None:
    loader = _StringLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _yaml_entries(view: _YamlView) -> tuple[_Entry, ...] | _YamlProblem:
    """The frontmatter read as YAML with the string-only loader, or what stops YAML."""
    try:
        node = _compose(view.text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = view.line_number(mark.index) if mark is not None else view.lines[0].number
        return _YamlProblem(exc.problem or exc.context or "invalid YAML", where)
    except ReaderError as exc:
        char = exc.character
        code = char if isinstance(char, int) else ord(char)
        problem = f"character U+{code:04X} is not allowed"
        return _YamlProblem(problem, view.line_number(int(exc.position)))
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is one of the above
        return _YamlProblem(str(exc).splitlines()[0], view.lines[0].number)
    except RecursionError:
        return _YamlProblem("nested too deeply", view.lines[0].number)
    if node is None:
        return ()
    if not isinstance(node, yaml.MappingNode):
        what = "a list" if isinstance(node, yaml.SequenceNode) else "text"
        return _YamlProblem(
            f"it is {what}, not 'key: value' lines", view.line_number(node.start_mark.index)
        )
    entries: list[_Entry] = []
    for key_node, value_node in node.value:
        line = view.line_number(key_node.start_mark.index)
        if not isinstance(key_node, yaml.ScalarNode) or not str(key_node.value).strip():
            return _YamlProblem("a key that is not a word", line)
        value, shape = _node_text(value_node)
        begin, finish = value_node.start_mark.index, value_node.end_mark.index
        colon = view.text.find(":", key_node.end_mark.index)
        # A block value ends after its line break (and blank lines): keep those in the file.
        while finish > begin and view.text[finish - 1] in " \t\n":
            finish -= 1
        lead = ""
        if isinstance(value_node, yaml.ScalarNode) and begin == finish and not value_node.style:
            lead = " "  # `key:` with nothing after it
        elif colon >= 0 and not view.same_row(colon, begin):
            begin, lead = colon + 1, " "  # the value starts on a later line
        entries.append(
            _Entry(
                str(key_node.value).strip(),
                value,
                shape,
                line,
                view.offset(begin),
                view.offset(finish),
                lead,
            )
        )
    return tuple(entries)


_KEY_LINE = re.compile(r"(?P<key>[^\W\d_][\w .()/-]*?)[ \t]*:(?:[ \t]+(?P<value>.*))?", re.DOTALL)
_COMMENT = re.compile(r"(?:^|[ \t])#")


def _quoted(raw: str) -> tuple[str, int] | None:
    """A value written in quotes, read as YAML reads it, and its length in `raw`."""
    try:
        node = _compose(raw)
    except (yaml.YAMLError, RecursionError):
        return None
    if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
        return str(node.value).strip(), node.end_mark.index
    return None


def _line_entry(line: _Line) -> _Entry | None:
    """A `key: value` line read as text: the key before the first ':', the value after it."""
    match = _KEY_LINE.fullmatch(line.stripped)
    if match is None:
        return None
    base = line.start + line.indent
    raw = match["value"]
    if raw is None:
        at = base + match.end()
        return _Entry(match["key"], "", "text", line.number, at, at, " ")
    begin = base + match.start("value")
    quoted = _quoted(raw) if raw[:1] in ("'", '"') else None
    if quoted is not None:
        value, length = quoted
    else:
        comment = _COMMENT.search(raw)
        kept = (raw[: comment.start()] if comment else raw).rstrip(_BLANKS)
        value, length = kept.strip(), len(kept)
    return _Entry(match["key"], value, "text", line.number, begin, begin + length, "")


def _line_entries(lines: tuple[_Line, ...]) -> tuple[_Entry, ...] | _Line:
    """Every non-blank, non-comment line read as `key: value`, or the first line that is not."""
    entries: list[_Entry] = []
    for line in lines:
        if not line.stripped or line.stripped.startswith("#"):
            continue
        entry = _line_entry(line)
        if entry is None:
            return line
        entries.append(entry)
    return tuple(entries)


def _read_frontmatter(
    lines: tuple[_Line, ...], source: str
) -> tuple[tuple[_Entry, ...], list[str]]:
    """The lines between the `---` lines as YAML, else as plain `key: value` lines."""
    if not lines:
        return (), []
    # Caffe strips every line before YAML sees it. Without indentation that changes nothing;
    # with it, YAML as written is what the author meant (and nested values become precise
    # errors instead of silently flattened keys), so it wins and Caffe's reading is a fallback.
    caffe = _yaml_entries(_YamlView.of(lines, strip=True))
    indented = next((line for line in lines if line.indent), None)
    if indented is None:
        if not isinstance(caffe, _YamlProblem):
            return caffe, []
    else:
        written = _yaml_entries(_YamlView.of(lines, strip=False))
        if not isinstance(written, _YamlProblem):
            if isinstance(caffe, _YamlProblem):
                how = f"then fails: {caffe.problem}, line {caffe.line}"
            elif _readable(caffe) != _readable(written):
                how = "then reads other values"
            else:
                return written, []
            warning = (
                f"{source}:{indented.number}: indented frontmatter: Caffe's downloader strips "
                f"indentation and {how}; read as YAML as written"
            )
            return written, [warning]
        if not isinstance(caffe, _YamlProblem):
            warning = (
                f"{source}:{written.line}: the frontmatter's indentation is not valid YAML "
                f"({written.problem}); read with every line stripped, as Caffe does"
            )
            return caffe, [warning]
    problem = caffe
    plain = _line_entries(lines)
    if isinstance(plain, _Line):
        shown = _show(plain.stripped)
        if _KEY_LINE.fullmatch(re.sub(r":(?=\S)", ": ", plain.stripped, count=1)):
            why = "put a space after the ':'"
        else:
            why = f"the frontmatter is not YAML either ({problem.problem}, line {problem.line})"
        raise ModelInfoError(
            f"{source}:{plain.number}: {shown} is not a 'key: value' line: {why}", _HINT_LINES
        )
    warning = (
        f"{source}:{problem.line}: the frontmatter is not valid YAML ({problem.problem}); "
        "read it as plain 'key: value' lines"
    )
    return plain, [warning]


def _readable(found: _Block | tuple[_Entry, ...] | None) -> list[tuple[str, str, str]]:
    """What a reader sees of the entries: key, value and shape, without positions."""
    entries = found.entries if isinstance(found, _Block) else found or ()
    return [(entry.key, entry.value, entry.shape) for entry in entries]


def _checked_keys(entries: tuple[_Entry, ...], source: str) -> list[str]:
    """Warnings for keys written another way; an error for a key given twice."""
    warnings: list[str] = []
    seen: dict[str, _Entry] = {}
    for entry in entries:
        first = seen.get(entry.key)
        if first is not None:
            raise ModelInfoError(
                f"{source}:{entry.line}: {entry.key!r} is given twice, on lines {first.line} "
                f"and {entry.line}: several models in one readme?",
                _HINT_ONE_MODEL,
            )
        seen[entry.key] = entry
        if entry.key != entry.written:
            warnings.append(f"{source}:{entry.line}: key {entry.written!r} read as {entry.key!r}")
    return warnings


_MODEL_LINE = re.compile(r"(caffemodel_url|caffemodel|sha1)[ \t]*:[ \t]*\S")


def _later_model_line(lines: tuple[_Line, ...], source: str) -> list[str]:
    """A warning when the body repeats a model key: a second model zoopm does not read."""
    for line in lines:
        match = _MODEL_LINE.match(line.stripped)
        if match:
            return [
                f"{source}:{line.number}: another '{match[1]}:' line after the frontmatter; "
                "only the frontmatter is read (one model per readme)"
            ]
    return []


# A heading; `##Information` without the space CommonMark wants is how the VGG team's
# readmes (among the zoo's most used) open, so any text may follow the hashes.
_HEADING = re.compile(r"#{1,6}(?:[^#].*)?")
_RULE = re.compile(r"(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}")
_UNDERLINE = re.compile(r"=+|-+")


def _loose_block(doc: _Document, dashes: list[int], source: str) -> _Block | None:
    """`key: value` lines at the top of a readme without frontmatter (or after its heading)."""
    lines = doc.lines
    index = 0
    while index < len(lines):
        text = lines[index].stripped
        if not text or _HEADING.fullmatch(text) or _RULE.fullmatch(text):
            index += 1
        elif (
            index + 1 < len(lines)
            and _UNDERLINE.fullmatch(lines[index + 1].stripped)
            and not _KEY_LINE.fullmatch(text)
        ):
            index += 2  # a heading underlined with === or ---
        else:
            break
    entries: list[_Entry] = []
    for line in lines[index:]:
        if not line.stripped:
            continue
        entry = _line_entry(line)
        if entry is None:
            break
        entries.append(entry)
    if not any(entry.key in KNOWN_KEYS for entry in entries):
        return None
    first, last = entries[0].line, entries[-1].line
    why = (
        f"only one '---' line (line {dashes[0] + 1}), which Markdown reads as a rule"
        if dashes
        else "no '---' lines"
    )
    warnings = [
        f"{source}:{first}: no frontmatter ({why}); read the 'key: value' lines {first}-{last}"
    ]
    warnings += _checked_keys(tuple(entries), source)
    end_line = lines[last - 1]
    return _Block(
        tuple(entries),
        first,
        last,
        end_line.end,
        end_line.ending or doc.newline,
        tuple(warnings),
    )


def _locate(doc: _Document, source: str) -> _Block | None:
    """The model information in a readme (Caffe's rule: between the first two `---` lines)."""
    dashes = [index for index, line in enumerate(doc.lines) if line.stripped == "---"]
    if len(dashes) < 2:
        return _loose_block(doc, dashes, source)
    top, bottom = dashes[0], dashes[1]
    warnings: list[str] = []
    if top > 0:
        warnings.append(
            f"{source}:{top + 1}: the frontmatter starts on line {top + 1}, not line 1 "
            "(Caffe reads it there; other tools may not)"
        )
    entries, more = _read_frontmatter(doc.lines[top + 1 : bottom], source)
    warnings += more
    warnings += _checked_keys(entries, source)
    warnings += _later_model_line(doc.lines[bottom + 1 :], source)
    before = doc.lines[bottom - 1]
    return _Block(entries, top + 1, bottom + 1, before.end, before.ending, tuple(warnings))


# --- checking values --------------------------------------------------------------------------

_DRIVE = re.compile(r"[A-Za-z]:")


def _caffemodel_problem(path: str) -> str | None:
    if any(ord(char) < 0x20 or char == "\x7f" for char in path):
        return "holds a control character"
    if "://" in path:
        return "is a URL; caffemodel names the file, caffemodel_url says where to get it"
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        return "is an absolute path, not a path inside the model directory"
    if "\\" in path:
        return "holds a backslash; separate directories with '/'"
    segments = path.split("/")
    if ".." in segments:
        return "climbs out of the model directory ('..')"
    if "" in segments or "." in segments:
        return "has an empty or '.' path segment"
    return None


def _url_check(url: str, where: str) -> str | None:
    """Raises for a URL zoopm cannot download; returns a warning for one that gives a page."""
    if any(ord(char) < 0x20 or char == "\x7f" for char in url):
        problem = "holds a control character or line break"
    else:
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        scheme = parts.scheme.lower() if parts else ""
        if parts is None:
            problem = "is not a valid URL"
        elif not scheme or scheme not in URL_SCHEMES:
            problem = (
                f"uses the scheme '{scheme}:'; zoopm downloads http, https and file URLs"
                if scheme
                else "has no scheme (http:// or https://)"
            )
        elif scheme != "file" and not parts.hostname:
            problem = "has no host name"
        else:
            return _page_warning(parts.hostname or "", parts.path, parts.query, where)
    raise ModelInfoError(f"{where}: caffemodel_url {_show(url)} {problem}", _HINT_URL)


def _page_warning(host: str, path: str, query: str, where: str) -> str | None:
    """A warning for share links known to answer with a web page instead of the file."""
    host = host.lower()
    params = parse_qs(query)
    if host in ("dropbox.com", "www.dropbox.com") and "1" not in params.get("raw", []):
        dl = params.get("dl", [])
        if "1" not in dl:
            said = f"dl={dl[0]}" if dl else "no dl=1"
            return (
                f"{where}: caffemodel_url is a Dropbox link with {said}, which returns a web "
                "page, not the file: it needs dl=1"
            )
    if (
        host in ("github.com", "www.github.com")
        and "/blob/" in path
        and params.get("raw") != ["true"]
    ):
        return (
            f"{where}: caffemodel_url is a GitHub page (/blob/), which returns HTML: "
            "add ?raw=true or use the raw.githubusercontent.com URL"
        )
    return None


def _check_field(key: str, value: str, where: str) -> tuple[str | None, str | None]:
    """The value to keep for a known key (None when empty) and a warning, or a ModelInfoError."""
    if not value:
        return None, None
    if key == "sha1":
        if not is_sha1_hex(value):
            raise ModelInfoError(
                f"{where}: sha1 must be 40 hex digits, not {_show(value)}", _HINT_SHA1
            )
        return value.lower(), None
    if key == "caffemodel":
        problem = _caffemodel_problem(value)
        if problem is not None:
            raise ModelInfoError(f"{where}: caffemodel {_show(value)} {problem}", _HINT_CAFFEMODEL)
    if key == "caffemodel_url":
        return value, _url_check(value, where)
    return value, None


# --- the public operations --------------------------------------------------------------------


def parse_model_info(data: bytes, source: str) -> ModelInfo:
    """Read a readme.md's model information; `source` names the file in messages.

    Only the first INFO_HEAD_BYTES are read: the frontmatter is at the top, and a readme of
    any size (someone else's file) must not cost memory in proportion to it.
    """
    if len(data) <= INFO_HEAD_BYTES:
        return _parse_model_info(data, source)
    head = data[: data.rfind(b"\n", 0, INFO_HEAD_BYTES) + 1] or data[:INFO_HEAD_BYTES]
    try:
        return _parse_model_info(head, source)
    except ModelInfoError as exc:
        raise ModelInfoError(
            f"{exc.message} (zoopm reads model information from the first "
            f"{INFO_HEAD_BYTES // 1024} KiB of readme.md only)",
            exc.hint,
        ) from None


def read_info_head(path: Path) -> bytes:
    """The part of a readme.md file that parse_model_info reads (and one byte more)."""
    with path.open("rb") as stream:
        return stream.read(INFO_HEAD_BYTES + 1)


def _parse_model_info(data: bytes, source: str) -> ModelInfo:
    doc = _decode(data, source)
    block = _locate(doc, source)
    if block is None:
        raise ModelInfoError(
            f"{source}: no model information: no frontmatter between two '---' lines and no "
            "'key: value' lines at the top",
            _HINT_FORMAT,
        )
    warnings = [*doc.warnings, *block.warnings]
    known: dict[str, str | None] = dict.fromkeys(KNOWN_KEYS)
    extra: dict[str, str] = {}
    for entry in block.entries:
        where = f"{source}:{entry.line}"
        if entry.key not in KNOWN_KEYS:
            extra[entry.written] = entry.value
            continue
        if entry.shape != "text":
            raise ModelInfoError(
                f"{where}: {entry.written} holds a {entry.shape} ({_show(entry.value)}); "
                "zoopm expects one line of text",
                _HINT_TEXT,
            )
        value, warning = _check_field(entry.key, entry.value, where)
        known[entry.key] = value
        if warning is not None:
            warnings.append(warning)
    if not any(known.values()):
        what = "is empty" if not block.entries else "sets none of " + ", ".join(KNOWN_KEYS)
        raise ModelInfoError(
            f"{source}:{block.first_line}: no model information: the frontmatter "
            f"(lines {block.first_line}-{block.last_line}) {what}",
            _HINT_FORMAT,
        )
    return ModelInfo(
        name=known["name"],
        caffemodel=known["caffemodel"],
        caffemodel_url=known["caffemodel_url"],
        sha1=known["sha1"],
        caffe_commit=known["caffe_commit"],
        caffe_version=known["caffe_version"],
        gist_id=known["gist_id"],
        license=known["license"],
        extra=tuple(sorted(extra.items())),
        warnings=tuple(warnings),
    )


def find_readme(names: Iterable[str], where: str) -> str | None:
    """The name among `names` that is readme.md in any case; None when there is none."""
    found = sorted({name for name in names if name.lower() == README_NAME})
    if len(found) > 1:
        raise ModelInfoError(
            f"{where}: several readme files that differ only in case: {', '.join(found)}",
            "keep one readme.md (the name Caffe reads) and remove the others",
        )
    return found[0] if found else None


_SET_KEY = re.compile(r"[a-z][a-z0-9_]*")
# Characters that YAML reads as line breaks or that it does not allow in a file.
_NOT_LITERAL = re.compile("[\x85\u2028\u2029\ufeff]")


def _literal(char: str, ascii_only: bool) -> bool:
    """Whether `char` may stand for itself in the file (else it is written as an escape)."""
    if char.isascii():
        return " " <= char <= "~" or char == "\t"
    if ascii_only or _NOT_LITERAL.match(char):
        return False
    if unicodedata.category(char) in ("Cc", "Cs"):
        return False
    return Reader.NON_PRINTABLE.match(char) is None


# What YAML 1.2 (core schema) reads as a number, bool or null: '0123456789' is text for PyYAML
# but an int there, and a gist id must stay text for every reader.
_YAML12_NOT_TEXT = re.compile(
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|null|Null|NULL|~|true|True|TRUE|false|False|FALSE"
)


def _reads_back_plain(value: str, ascii_only: bool) -> bool:
    """Whether `key: value` reads back as `value` for zoopm, PyYAML (Caffe) and YAML 1.2."""
    if _YAML12_NOT_TEXT.fullmatch(value):
        return False
    if not all(_literal(char, ascii_only) for char in value):
        return False
    for loader in (_StringLoader, yaml.SafeLoader):
        try:
            if yaml.load(f"k: {value}\n", Loader=loader) != {"k": value}:
                return False
        except (yaml.YAMLError, RecursionError):
            return False
    return True


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _render(value: str, ascii_only: bool) -> str:
    """The value as written after `key: `: plain when that reads back, else double-quoted."""
    if _reads_back_plain(value, ascii_only):
        return value
    out = ['"']
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _literal(char, ascii_only):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02X}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    out.append('"')
    return "".join(out)


def set_frontmatter_key(data: bytes, key: str, value: str, source: str) -> bytes:
    """`data` with `key` set to `value`; every byte outside that key's line stays as it was."""
    if not _SET_KEY.fullmatch(key) or _canonical(key) != key:
        raise ModelInfoError(
            f"{source}: cannot set key {key!r}: keys are lower-case words such as 'gist_id'",
            f"known keys: {', '.join(KNOWN_KEYS)}",
        )
    if not value or value != value.strip():
        raise ModelInfoError(
            f"{source}: cannot set {key} to {_show(value)}: the value is empty or starts or ends "
            "with white space",
            _HINT_SET,
        )
    if key in KNOWN_KEYS:
        _check_field(key, value, source)
    doc = _decode(data, source)
    block = _locate(doc, source)
    text = doc.text
    written = _render(value, ascii_only=doc.encoding != "utf-8")
    existing = next((e for e in block.entries if e.key == key), None) if block else None
    if existing is not None:
        new_text = text[: existing.start] + existing.lead + written + text[existing.end :]
    elif block is not None:
        at = block.insert_at
        new_text = f"{text[:at]}{block.insert_ending}{key}: {written}{text[at:]}"
    else:
        newline = doc.newline
        new_text = f"---{newline}{key}: {written}{newline}---{newline}{text}"
    result = doc.encode(new_text)
    # Check the promise instead of trusting it: unusual YAML (flow mappings, a file that
    # only parses once the edited line changes) could otherwise make other keys read anew.
    try:
        after = _locate(_decode(result, source), source)
    except ModelInfoError as exc:
        raise ModelInfoError(
            f"{source}: cannot set {key} in place: the frontmatter would not read back "
            f"({exc.message})",
            _HINT_SET,
        ) from exc
    others_before = [item for item in _readable(block) if item[0] != key]
    others_after = [item for item in _readable(after) if item[0] != key]
    mine = [item for item in _readable(after) if item[0] == key]
    if others_before != others_after or mine != [(key, value, "text")]:
        raise ModelInfoError(
            f"{source}: cannot set {key} in place: the frontmatter would not read back as written",
            _HINT_SET,
        )
    return result

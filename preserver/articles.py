"""Reading one article: front matter, snapshot URL, images and body links.

Every outcome is a record, never an exception: a damaged file becomes an `Article` with
`parse_status = error` and a message a person understands, so a scan of 49,118 files goes on.
Files whose YAML holds C0 control characters (real ones do: \\x08, \\x1c inside quoted strings)
are repaired by dropping those characters and parsed again (`repaired`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
import yaml

from .status import ParseStatus
from .urls import is_http_url, parse_wayback_url, resolve_link, same_original

# C0 controls other than tab, newline and carriage return; YAML refuses them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# <img src>, <a href> and the embedding tags; ![](...) and [](...); Hugo shortcodes
# `{{< video src="..." >}}`. Each pattern starts with a literal character, which lets the regex
# engine skip through long CJK bodies (a leading alternation cannot); the link text is matched
# unrolled (a run of plain characters, then an escape or a bracketed part: Cloudflare's
# `[[email protected]](/web/...)`).
_TAG = re.compile(r"<(img|a|iframe|video|source|audio|embed)\b[^>]*?\b(?:src|href)\s*=\s*"
                  r"(?:\"([^\"]*)\"|'([^']*)')", re.I)
_MARKDOWN = re.compile(r"\[[^\[\]\\\n]*(?:(?:\\.|\[[^\[\]\\\n]*\])[^\[\]\\\n]*)*\]"
                       r"\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SHORTCODE = re.compile(r"\{\{[<%][^}]*?\bsrc\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'}]+))")
_IMAGE, _LINK, _EMBED = 0, 1, 2
_TAG_ROLES = {"img": _IMAGE, "a": _LINK}  # the other tags embed media
_TEXT_FIELDS = ("title", "date", "author", "category")
_OPENING_LINE = re.compile(r"---[ \t]*\r?\n")
_YAML_HANDLER = frontmatter.YAMLHandler()


class _UniqueKeyLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):
    """The safe loader, refusing duplicate keys: with two `url:` lines, which one is meant?"""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _StrictYAMLHandler(frontmatter.YAMLHandler):
    def load(self, fm: str, **kwargs):
        return yaml.load(fm, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader


_STRICT_YAML = _StrictYAMLHandler()
# A double-quoted YAML scalar with no escapes but \" and \\ (written unrolled, a run of plain
# characters then an escape: `re` is slow on a per-character alternation)
_PLAIN = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]'
_QUOTED = r'"(' + _PLAIN + r'*(?:\\["\\\\]' + _PLAIN + r'*)*)"'
# `key: "text"`, `key:` (a list follows) or `  - "text"`, and nothing else
_FLAT_LINE = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]*):(?: " + _QUOTED + r")?|  - " + _QUOTED
                        + r")[ ]*")
_RESOLVER = yaml.resolver.Resolver()
_ESCAPE = re.compile(r'\\(["\\])')


@dataclass
class Article:
    """What one file says, or what is wrong with it."""

    path: str  # relative to the corpus root, with forward slashes
    sha256: str = ""
    size: int = 0
    mtime_ns: int = 0
    parse_status: ParseStatus = ParseStatus.OK
    parse_error: str | None = None
    title: str | None = None
    date: str | None = None
    author: str | None = None
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    url: str | None = None
    original_url: str | None = None
    snapshot_timestamp: str | None = None
    url_mismatch: bool = False  # the snapshot embeds another page than original_url
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    embeds: list[str] = field(default_factory=list)  # iframes, videos, Hugo shortcodes

    def fail(self, message: str) -> Article:
        self.parse_status = ParseStatus.ERROR
        self.parse_error = message
        return self


def read_article(root: Path, file: Path | str, max_bytes: int,
                 path: str | None = None) -> Article:
    """Read one article file under root (`path`: file relative to root, if known). Never
    raises for anything the file holds."""
    article = Article(path=path or Path(file).relative_to(root).as_posix())
    try:
        with open(file, "rb") as handle:
            stat = os.fstat(handle.fileno())
            size, article.mtime_ns = stat.st_size, stat.st_mtime_ns
            if size > max_bytes:
                return article.fail(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")
            data = handle.read()
    except OSError as exc:
        return article.fail(f"cannot read file: {exc.strerror or exc}")
    article.size = size
    article.sha256 = hashlib.sha256(data).hexdigest()
    return parse_article(article, data)


def parse_article(article: Article, data: bytes) -> Article:
    """Fill `article` from the file's bytes."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        return article.fail(f"not UTF-8 text: invalid byte 0x{bad:02x} at offset {exc.start}")
    if not text or text.isspace():
        return article.fail("the file is empty")
    if "\x00" in text:
        return article.fail("the file holds NUL bytes: it is binary, not a Markdown article")
    meta, body, error = _load_front_matter(text)
    if error and _CONTROL.search(text):
        meta, body, error = _load_front_matter(_CONTROL.sub("", text))
        if error is None:
            article.parse_status = ParseStatus.REPAIRED
            article.parse_error = "dropped control characters from the YAML"
    if error:
        return article.fail(error)
    _fill_fields(article, meta)
    if article.parse_status != ParseStatus.ERROR:
        _extract_references(article, body)
    return article


def _load_front_matter(text: str) -> tuple[dict, str, str | None]:
    """(metadata, body, error message or None)."""
    if not _OPENING_LINE.match(text):
        return {}, text, "no YAML front matter: the file must start with a '---' line"
    flat = _flat_front_matter(text)
    if flat is not None:
        return flat[0], flat[1], None
    try:
        post = frontmatter.loads(text, handler=_STRICT_YAML)
    except yaml.YAMLError as exc:
        return {}, text, f"YAML front matter is malformed: {_yaml_message(exc)}"
    except (ValueError, TypeError) as exc:
        return {}, text, f"YAML front matter is malformed: {exc}"
    if not post.metadata and text.count("---") < 2:
        return {}, text, "no YAML front matter: the closing '---' line is missing"
    return dict(post.metadata), post.content, None


def _flat_front_matter(text: str) -> tuple[dict, str] | None:
    """The fast path for the corpus's own shape: `key: "text"` lines and `- "text"` lists,
    no escapes but \\" and \\\\. Returns None for anything else, which PyYAML then reads;
    on what it accepts it gives what PyYAML gives (a property test checks that)."""
    try:
        front, body = _YAML_HANDLER.split(text.strip())  # as frontmatter.parse does
    except ValueError:
        return None
    meta: dict = {}
    current: list | None = None
    for line in front.splitlines():
        if not line.strip():
            continue
        match = _FLAT_LINE.fullmatch(line)
        if match is None:
            return None
        key, value, item = match.groups()
        if key is None:
            if current is None:
                return None
            current.append(_unescape(item))
        elif key in meta or not _is_plain_string(key):
            return None  # a duplicate key, or one YAML reads as a bool or null: PyYAML decides
        elif value is None:
            meta[key] = current = []
        else:
            meta[key], current = _unescape(value), None
    meta = {k: (None if v == [] else v) for k, v in meta.items()}  # a bare `key:` is null
    return meta, body.strip()


@functools.lru_cache(maxsize=256)
def _is_plain_string(key: str) -> bool:
    """Does YAML read this bare key as a string (not `on`, `no`, `null`, ...)?"""
    return _RESOLVER.resolve(yaml.ScalarNode, key, (True, False)) == "tag:yaml.org,2002:str"


def _unescape(quoted: str) -> str:
    return _ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def _fill_fields(article: Article, meta: dict) -> None:
    for name in _TEXT_FIELDS:
        article.__setattr__(name, _as_text(meta.get(name)))
    tags = meta.get("tags") or []
    article.tags = [_as_text(t) for t in (tags if isinstance(tags, list) else [tags])]
    article.url = _as_text(meta.get("url"))
    article.original_url = _as_text(meta.get("original_url"))
    missing = [k for k in ("url", "original_url") if not article.__getattribute__(k)]
    if missing:
        article.fail("front matter has no " + " and no ".join(f"'{k}'" for k in missing))
        return
    snapshot = parse_wayback_url(article.url)
    if snapshot is None:
        article.fail("'url' is not a Wayback snapshot URL "
                     f"(https://web.archive.org/web/<timestamp>/<url>): {article.url[:200]}")
        return
    if not is_http_url(article.original_url):
        article.fail(f"'original_url' is not an http(s) URL: {article.original_url[:200]}")
        return
    article.snapshot_timestamp = snapshot.timestamp
    article.url_mismatch = not same_original(snapshot.original, article.original_url)


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _extract_references(article: Article, body: str) -> None:
    page = article.url or ""
    found = [(m.start(), _TAG_ROLES.get(m[1].lower(), _EMBED),
              html.unescape(m[2] if m[2] is not None else m[3])) for m in _TAG.finditer(body)]
    found += [(m.start(), _IMAGE if body[m.start() - 1 : m.start()] == "!" else _LINK, m[1])
              for m in _MARKDOWN.finditer(body)]
    found += [(m.start(), _EMBED, m[1] or m[2] or m[3] or "")  # Markdown: no entities
              for m in _SHORTCODE.finditer(body)]  # (cheaper than a `"{{" in body` test first)
    found.sort()
    by_role: tuple[list, list, list] = ([], [], [])  # images, links, embeds
    for _, role, url in found:
        if url.strip():
            by_role[role].append(resolve_link(url, page))
    article.images, article.links, article.embeds = map(_unique, by_role)


def _unique(urls) -> list[str]:
    return list(dict.fromkeys(urls))

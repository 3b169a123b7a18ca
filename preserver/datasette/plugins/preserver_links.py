"""Datasette plugin shipped with preserver, loaded by `preserver serve` (--plugins-dir).

Makes the ledger clickable and readable: URLs open the live page or the snapshot (with a
"history" link to every check of that URL), `local_path` opens the saved image (served from the
media folder at /media/ by this plugin's own route) under a thumbnail, article paths open
"how one article stands" and show the article's title where the row has none (what a foreign
key's label_column would do: the ledger has no foreign keys), statuses and verdicts are
coloured. It also gives the custom pages (/chart) `sql()` and `ledger_db`, serves a small
stylesheet and adds the main views to the menu.

The media folder is served by a route of its own, not by `--static`: Datasette routes on the raw,
percent-encoded path and its static handler looks that text up on disk, so every file with a
CJK character, a space or a `%` in its path (99.4% of the real corpus's images live under
`news_新聞/`) answered 404. The route decodes each segment exactly once, refuses `..`, encoded
slashes, NUL and anything that resolves outside the folder (a symlink), and names the type from
the file's bytes.
"""

from __future__ import annotations

import mimetypes
import os
from urllib.parse import quote, unquote, urlencode

from datasette import hookimpl
from datasette.utils.asgi import NotFound, Response, asgi_send_file
from markupsafe import Markup, escape

URL_COLUMNS = {"url", "original_url", "final_url", "source_url"}
PATH_COLUMNS = {"path", "article_path"}
HASH_COLUMNS = {"sha256", "digest"}  # shown shortened; the whole value is in the tooltip
STATUS_COLUMNS = {"status", "snapshot_status", "original_status", "was"}
GOOD = {"ok", "redirected", "saved", "completed", "complete", "verified"}
UNKNOWN = {"rate_limited", "running", "not checked", "not fetched yet", "partial",
           "unverified"}
VERDICTS = {  # verdict -> badge colour (article_health)
    "snapshot broken": "#c62828", "images missing": "#ef6c00", "unreadable": "#6a1b9a",
    "archive unreachable": "#757575", "not checked yet": "#757575", "original gone": "#2e7d32",
    "ok": "#2e7d32", "file removed": "#757575",
}
SHOWN_URL_CHARS = 72  # longer URLs are shortened in the middle; the link is the whole URL
IMAGE_TYPES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg", ".ico", ".avif")
STYLESHEET = "/-/preserver.css"
PLUGIN = "preserver_links"  # metadata: plugins: preserver_links: media_path: <folder>
MEDIA_HEADERS = {  # a saved SVG opened from /media/ must not run script in Datasette's origin
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "max-age=300",
}
CSS = """
/* preserver: column descriptions as a compact grid, not a page-long list */
dl.column-descriptions { display: grid; grid-template-columns: max-content 1fr max-content 1fr;
  gap: 0.1em 0.9em; font-size: 0.85em; margin: 0.6em 0 1.2em; max-width: 110em; }
dl.column-descriptions dt { font-weight: bold; margin: 0; }
dl.column-descriptions dd { margin: 0; color: #555; }
@media (max-width: 900px) {
  dl.column-descriptions { grid-template-columns: max-content 1fr; }
}
/* text worth reading gets room; times stay on one line */
.rows-and-columns td.col-title, .rows-and-columns td.col-problems,
.rows-and-columns td.col-meaning, .rows-and-columns td.col-reason,
.rows-and-columns td.col-error { min-width: 13em; }
.rows-and-columns td[class*="_at "], .rows-and-columns td.col-date,
.rows-and-columns td.col-verdict, .rows-and-columns td.col-status,
.rows-and-columns td.col-snapshot_status, .rows-and-columns td.col-original_status {
  white-space: nowrap; }
/* URLs wrap anywhere, in a column wide enough to read them */
.rows-and-columns td.col-url, .rows-and-columns td.col-original_url,
.rows-and-columns td.col-final_url, .rows-and-columns td.col-source_url {
  min-width: 16em; overflow-wrap: anywhere; }
.preserver-badge { display: inline-block; padding: 0.05em 0.5em; border-radius: 0.8em;
  color: #fff; font-size: 0.9em; }
.preserver-good { color: #2e7d32; }
.preserver-bad { color: #b71c1c; font-weight: 600; }
.preserver-unknown { color: #757575; }
dl.preserver-index { margin: 0.4em 0 1.4em; }
dl.preserver-index dt { font-size: 1.05em; margin-top: 0.55em; }
dl.preserver-index dd { margin: 0.1em 0 0 1.4em; color: #444; }
.preserver-count { font-size: 0.85em; color: #666; margin-left: 0.4em; }
a.preserver-history { font-size: 0.8em; white-space: nowrap; }
a.preserver-media img { display: block; max-height: 64px; max-width: 160px;
  margin-bottom: 2px; border: 1px solid #ccc; }
"""


def _ledger_name(datasette) -> str:
    return datasette.get_database().name


def _query_url(datasette, database: str, query: str, **params) -> str:
    return f"{datasette.urls.database(database)}/{query}?{urlencode(params)}"


def _shorten(text: str, limit: int = SHOWN_URL_CHARS) -> str:
    if len(text) <= limit:
        return text
    head = (limit - 1) * 2 // 3
    return text[:head] + "\u2026" + text[-(limit - 1 - head):]


def _url_link(value: str) -> str:
    shown = value.split("://", 1)[-1]  # the scheme is noise here; the link keeps it
    return (f'<a class="preserver-url" href="{escape(value)}" title="{escape(value)}" '
            f'rel="noreferrer noopener" target="_blank">{escape(_shorten(shown))}</a>')


def _media_link(datasette, path: str) -> Markup:
    href = datasette.urls.path("/media/" + quote(path))
    thumbnail = ""
    if path.lower().endswith(IMAGE_TYPES):
        thumbnail = f'<img src="{escape(href)}" alt="" loading="lazy">'
    return Markup(f'<a class="preserver-media" href="{escape(href)}" title="{escape(path)}" '
                  f'target="_blank">{thumbnail}{escape(_shorten(path, 48))}</a>')


def _status(value: str) -> Markup:
    kind = "good" if value in GOOD else "unknown" if value in UNKNOWN else "bad"
    return Markup(f'<span class="preserver-{kind}">{escape(value)}</span>')


def _article_link(datasette, row, value: str, database: str):
    href = _query_url(datasette, database, "one_article", path=value)
    keys = row.keys() if hasattr(row, "keys") else ()
    if "title" in keys:
        return Markup(f'<a href="{escape(href)}" title="all URLs of this article">'
                      f"{escape(value)}</a>")

    async def with_title():
        db = datasette.get_database(database)
        rows = (await db.execute("select title from articles where path = ?", [value])).rows
        title = rows[0][0] if rows and rows[0][0] else None
        label = f"{escape(title)} <em>{escape(value)}</em>" if title else str(escape(value))
        return Markup(f'<a href="{escape(href)}" title="all URLs of this article">{label}</a>')

    return with_title


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if not isinstance(value, str) or not value:
        return None
    if column == "local_path":
        return _media_link(datasette, value)
    if column in URL_COLUMNS and value.startswith(("http://", "https://")):
        html = _url_link(value)
        if column == "url":
            history = _query_url(datasette, database, "url_history", url=value)
            html += (f' <a class="preserver-history" href="{escape(history)}" '
                     'title="every check of this URL">history</a>')
        return Markup(html)
    if column in PATH_COLUMNS and table != "articles":
        return _article_link(datasette, row, value, database)
    if column in HASH_COLUMNS and len(value) > 16:
        return Markup(f'<span title="{escape(value)}">{escape(value[:12])}\u2026</span>')
    if column == "verdict" and value in VERDICTS:
        return Markup(f'<span class="preserver-badge" style="background:{VERDICTS[value]}">'
                      f"{escape(value)}</span>")
    if column in STATUS_COLUMNS and table not in ("status_meanings",):
        return _status(value)
    return None


@hookimpl
def extra_template_vars(datasette):
    """`ledger_db` (the ledger's database name) and `sql()` for the custom pages (/chart): the
    function datasette-template-sql would add, read-only, under Datasette's time limit."""

    async def sql(query: str, params=None, database: str | None = None) -> list:
        db = datasette.get_database(database)
        return list((await db.execute(query, params or [])).rows)

    return {"ledger_db": _ledger_name(datasette), "sql": sql}


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.path(STYLESHEET)]


@hookimpl
def register_routes():
    async def stylesheet():
        return Response(CSS, content_type="text/css; charset=utf-8",
                        headers={"Cache-Control": "max-age=300"})

    return [(r"^/-/preserver\.css$", stylesheet), (r"^/media/(?P<path>.*)$", media_file)]


def media_file_path(root: str, raw_path: str) -> str | None:
    """The file under `root` that the raw (percent-encoded) request path names, or None.

    Each segment is decoded exactly once (`%2525` names a file called `%25`); an empty, `.` or
    `..` segment, one that decodes to a slash or NUL, invalid UTF-8, and a path that resolves
    outside `root` (through a symlink) name nothing."""
    segments = []
    for raw in raw_path.split("/"):
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return None
        if segment in ("", ".", "..") or "/" in segment or "\x00" in segment:
            return None
        segments.append(segment)
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, *segments))
    if os.path.commonpath([real_root, target]) != real_root or not os.path.isfile(target):
        return None
    return target


def media_type(path: str) -> str:
    """What the bytes are (a saved image was checked by its magic number), else the name's
    type, else opaque bytes."""
    from preserver.images import sniff_image_type

    with open(path, "rb") as handle:
        head = handle.read(1024)
    return (sniff_image_type(head) or mimetypes.guess_type(path)[0]
            or "application/octet-stream")


async def media_file(request, send, datasette):
    root = (datasette.plugin_config(PLUGIN) or {}).get("media_path")
    target = media_file_path(root, request.url_vars["path"]) if root else None
    if target is None:
        raise NotFound("No saved file at this path")
    await asgi_send_file(send, target, content_type=media_type(target),
                         chunk_size=65536, headers=dict(MEDIA_HEADERS))


@hookimpl
def menu_links(datasette):
    database = _ledger_name(datasette)
    links = [(datasette.urls.path("/chart"), "Charts")]
    for view, label in (("article_health", "Article health"),
                        ("broken_snapshots", "Broken snapshots"),
                        ("missing_images", "Missing images"), ("newly_broken", "Newly broken"),
                        ("health_by_year", "Health by year and category")):
        links.append((datasette.urls.table(database, view), label))
    return [{"href": href, "label": label} for href, label in links]

"""Each article's health, kept in a table rather than worked out on every page load.

An article's verdict rolls up its snapshot, its original, its images and its embeds: at 49,000
articles, working that out from `links`, `urls` and `images` takes seconds, and the views and the
chart need it on every request (and once more for each facet). So the ledger keeps it: `health`
holds one row per article (removed and unreadable ones too), computed by HEALTH_SQL (and
`health_missing_images` the image links not saved, by MISSING_IMAGES_SQL), and the
`article_health` view reads it (the title and URLs looked up in `articles` for the rows shown,
not copied; `freshness`, relative to now, worked out when read).

What changed is known by SQLite itself: triggers on `articles`, `urls` and `images` (an
article's links are written with its row) record each written key in two small tables,
`health_stale_articles` and `health_stale_urls`, in the same transaction as the write, so even
a killed run leaves them behind. `refresh()` turns the stale URLs into the articles that cite
them (through the links' url index), deletes those articles' rows and inserts them again from
the computing queries restricted to them: SQL over the changed set, never a loop over the
corpus. The run refreshes at its start (what a killed run left), at the end of every phase,
when interrupted, and during a long phase at most every REFRESH_SECONDS. `ensure()` (from
ensure_schema) creates the tables and builds them whole once, and again whenever a computing
query changes (its fingerprint is recorded in `migrations`).
"""

from __future__ import annotations

import hashlib

import sqlite_utils

from .status import ARCHIVE_SIDE, BROKEN, GOOD, UrlStatus, sql_list

REFRESH_SECONDS = 30  # during a long phase, Datasette is at most this stale
VERDICTS = {1: "snapshot broken", 2: "images missing", 3: "unreadable",
            4: "archive unreachable", 5: "not checked yet", 6: "original gone", 7: "ok",
            8: "file removed"}
# the roles whose URLs a verdict reads (body links do not count)
ROLES = ("snapshot", "original", "image", "embed")

# The computing query: one row per article of `articles` (restricted by {where}), its columns in
# the order of the table. Severity sorts the worst first.
HEALTH_SQL = f"""
    select path,
      case severity {' '.join(f"when {n} then '{v}'" for n, v in VERDICTS.items() if n < 8)}
        else '{VERDICTS[8]}' end as verdict,
      severity, problems, snapshot_status, original_status, images_saved, image_count,
      embeds_broken, embed_count, date, category, year, capture_year, captures, parse_status,
      snapshot_confirmed_at, snapshot_attempt_at, snapshot_attempt_status,
      snapshot_attempt_conclusive
    from (
      select h.*,
        case
          when removed_at is not null then 8
          when parse_status = 'error' then 3
          when snapshot_status in ({sql_list(GOOD)}) then
            case when images_saved < image_count then 2
                 when original_status in ({sql_list(GOOD | {UrlStatus.EXCLUDED.value})}) then 7
                 when original_status is null then 7  -- unknown is not gone
                 else 6 end
          when snapshot_status is null and snapshot_attempt_at is not null then 4
          when snapshot_status is null
            or (snapshot_status = 'excluded' and snapshot_method = 'config') then 5
          when snapshot_status in ({sql_list(ARCHIVE_SIDE)}) then 4
          else 1
        end as severity,
        nullif(trim(
          case when parse_status = 'error' then coalesce(parse_error, 'unreadable') || '; '
               else '' end
          || case when snapshot_status not in ({sql_list(GOOD)})
                  then 'snapshot ' || snapshot_status || '; ' else '' end
          || case when images_saved < image_count then (image_count - images_saved)
                  || ' of ' || image_count || ' images not saved; ' else '' end
          || case when embeds_broken > 0 then embeds_broken || ' of ' || embed_count
                  || ' embeds gone from the archive; ' else '' end
          || case when original_status not in ({sql_list(GOOD)})
                  then 'original ' || original_status || '; ' else '' end
          || case when removed_at is not null then 'file removed ' || removed_at
                  else '' end, '; '), '') as problems
      from (
        select a.path, a.date, substr(a.date, 1, 4) as year, a.category,
          a.parse_status, a.parse_error, a.removed_at, s.status as snapshot_status,
          s.method as snapshot_method, s.checked_at as snapshot_confirmed_at,
          s.last_attempt_at as snapshot_attempt_at,
          s.last_attempt_status as snapshot_attempt_status,
          s.last_attempt_conclusive as snapshot_attempt_conclusive,
          o.status as original_status, o.captures,
          (select count(distinct l.url) from links l join images i on i.url = l.url
             where l.article_path = a.path and l.role = 'image' and i.status = 'saved')
             as images_saved,
          coalesce(a.image_count, 0) as image_count,
          case when a.embed_count > 0 then  -- four articles in five have none: no search
            (select count(distinct l.url) from links l join urls e on e.url = l.url
             where l.article_path = a.path and l.role = 'embed'
               and e.status in ({sql_list(BROKEN)})) else 0 end as embeds_broken,
          coalesce(a.embed_count, 0) as embed_count,
          substr(a.snapshot_timestamp, 1, 4) as capture_year
        from articles a
        left join urls s on s.url = a.url
        left join urls o on o.url = a.original_url
        {{where}}
      ) h
    )"""
COLUMNS = {
    "path": "text primary key", "verdict": "text", "severity": "integer", "problems": "text",
    "snapshot_status": "text", "original_status": "text", "images_saved": "integer",
    "image_count": "integer", "embeds_broken": "integer", "embed_count": "integer",
    "date": "text", "category": "text", "year": "text", "capture_year": "text",
    "captures": "integer", "parse_status": "text", "snapshot_confirmed_at": "text",
    "snapshot_attempt_at": "text", "snapshot_attempt_status": "text",
    "snapshot_attempt_conclusive": "integer",
}
# the rows that are not fine, as the views select them (a partial index serves a query whose
# WHERE repeats its condition)
SNAPSHOT_FAILING = f"snapshot_status not in ({sql_list(GOOD)})"
IMAGES_MISSING = "images_saved < image_count"
INDEXES = {  # for the facets and sorts of the views, the canned queries and /chart
    "idx_health_severity_date": "(severity, date)",
    "idx_health_verdict_severity": "(verdict, severity)",
    "idx_health_category_severity": "(category, severity)",
    "idx_health_year_category_verdict": "(year, category, verdict)",
    "idx_health_capture_year": "(capture_year, snapshot_status, verdict)",
    "idx_health_date": "(date)",
    "idx_health_snapshot_failing": f"(snapshot_status) where {SNAPSHOT_FAILING}",
    "idx_health_images_missing": f"(path) where {IMAGES_MISSING}",
}
STALE_TABLES = {"health_stale_articles": "path", "health_stale_urls": "url"}
# table -> (stale table, the key each written row names). Not `links`: an article's links are
# only ever written with its row, in one transaction (Ledger.record_articles), so the row's
# trigger covers them, and a trigger on links would double the cost of a scan's link inserts
# (some 350,000 for 49,000 articles). Older ledgers lose the links triggers (DROPPED).
WATCHED = {"articles": ("health_stale_articles", "path"),
           "urls": ("health_stale_urls", "url"), "images": ("health_stale_urls", "url")}
DROPPED = ["links"]

# `article_health`: the kept rows, with the title and URLs from `articles` (not copied: looked up
# only for the rows shown, not for a count or a facet), and how fresh the snapshot's verdict is,
# worked out now.
def _age_sql(column: str) -> str:
    """How long ago an ISO time was, in words a person reads at a glance."""
    days = f"(julianday('now') - julianday({column}))"
    return (f"(case when {days} < 1 then 'today' when {days} < 2 then 'yesterday' "
            f"else cast({days} as integer) || ' days ago' end)")


VIEW_SQL = f"""
        select h.path, (select title from articles where path = h.path) as title, h.verdict,
          h.problems, h.snapshot_status, h.original_status, h.images_saved, h.image_count,
          h.embeds_broken, h.embed_count, (select url from articles where path = h.path) as url,
          (select original_url from articles where path = h.path) as original_url,
          h.date, h.category, h.year, h.capture_year, h.captures, h.parse_status, h.severity,
          h.snapshot_confirmed_at,
          case when h.snapshot_confirmed_at is null then
                 case when h.snapshot_attempt_at is null then 'not checked yet'
                      else 'never confirmed; last attempt ' || h.snapshot_attempt_status || ' '
                           || {_age_sql('h.snapshot_attempt_at')} end
               else 'snapshot ' || h.snapshot_status || ', last confirmed '
                    || {_age_sql('h.snapshot_confirmed_at')}
                    || case when h.snapshot_attempt_conclusive = 0
                            then '; last attempt ' || h.snapshot_attempt_status || ' '
                                 || {_age_sql('h.snapshot_attempt_at')} else '' end
          end as freshness
        from health h"""


def computing_query(where: str = "") -> str:
    return HEALTH_SQL.replace("{where}", where)


STALE_WHERE = "where a.path in (select path from health_stale_articles)"
# Beside each article's row, its image links that are not saved (one row per link, as
# `missing_images` shows them): that view reads these few rows instead of looking up every
# image of every article with one missing. {where} restricts it to stale articles.
MISSING_IMAGES_SQL = """
    select l.article_path, l.url from links l left join images i on i.url = l.url
    where l.role = 'image' and i.status is not 'saved' {where}"""
MISSING_IMAGES_STALE = "and l.article_path in (select path from health_stale_articles)"
TABLES = {  # the kept tables: columns, indexes
    "health": ("(" + ", ".join(f"[{name}] {kind}" for name, kind in COLUMNS.items()) + ")",
               INDEXES),
    "health_missing_images": ("(article_path text, url text)",
                              {"idx_health_missing_images_path": "(article_path)"}),
}
FINGERPRINT = "health " + hashlib.sha256(
    (HEALTH_SQL + MISSING_IMAGES_SQL + repr(TABLES)).encode()).hexdigest()[:16]


def missing_images_query(where: str = "") -> str:
    return MISSING_IMAGES_SQL.replace("{where}", where)


def ensure(db: sqlite_utils.Database) -> None:
    """The table, its indexes, the stale tables and their triggers; the table built whole when
    it is new or HEALTH_SQL changed since it was built. Idempotent."""
    for table, key in STALE_TABLES.items():
        db.execute(f"create table if not exists [{table}] ([{key}] text primary key) "
                   "without rowid")
    for table in DROPPED:
        for event in ("insert", "update", "delete"):
            db.execute(f"drop trigger if exists [health_{table}_{event}]")
    for table, (stale, key) in WATCHED.items():
        for event, row in (("insert", "new"), ("update", "new"), ("delete", "old")):
            # not `insert or ignore`: an outer statement's conflict policy (an upsert's)
            # overrides the trigger's, so the trigger must never conflict
            db.execute(f"drop trigger if exists [health_{table}_{event}]")
            db.execute(f"create trigger [health_{table}_{event}] after {event} "
                       f"on [{table}] begin insert into [{stale}] select {row}.[{key}] "
                       f"where not exists (select 1 from [{stale}] "
                       f"where [{STALE_TABLES[stale]}] = {row}.[{key}]); end")
    built = db.execute("select 1 from migrations where name = ?", [FINGERPRINT]).fetchone()
    have = [row[1] for row in db.execute("pragma table_info(health)")]
    if built and have == list(COLUMNS) and db.table("health_missing_images").exists():
        return
    with db.atomic():
        for table, (columns, indexes) in TABLES.items():
            db.execute(f"drop table if exists [{table}]")
            db.execute(f"create table [{table}] {columns}")
            for name, definition in indexes.items():
                db.execute(f"create index [{name}] on [{table}] {definition}")
        db.execute(f"insert into health {computing_query()}")
        db.execute(f"insert into health_missing_images {missing_images_query()}")
        for table in STALE_TABLES:
            db.execute(f"delete from [{table}]")
        db.execute("delete from migrations where name like 'health %'")
        db.execute("insert into migrations (name, done_at, note) values (?, "
                   "strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?)",
                   [FINGERPRINT, "health table built from scratch"])


def refresh(db: sqlite_utils.Database) -> int:
    """Compute again the rows of the articles whose rows (and links), URLs or images were written
    since the last refresh; how many. One transaction."""
    with db.atomic():
        db.execute(
            "insert or ignore into health_stale_articles (path) "
            "select l.article_path from health_stale_urls c cross join links l "
            f"on l.url = c.url and l.role in ({sql_list(ROLES)})")
        db.execute("delete from health_stale_urls")
        count = db.execute("select count(*) from health_stale_articles").fetchone()[0]
        if count:
            db.execute("delete from health where path in "
                       "(select path from health_stale_articles)")
            db.execute(f"insert into health {computing_query(STALE_WHERE)}")
            db.execute("delete from health_missing_images where article_path in "
                       "(select path from health_stale_articles)")
            db.execute("insert into health_missing_images "
                       f"{missing_images_query(MISSING_IMAGES_STALE)}")
            db.execute("delete from health_stale_articles")
    return count

"""A phase's to-do list, kept in a temporary SQLite table instead of in memory.

The real corpus names 49,118 snapshots, as many originals and 138,980 image URLs. As Python
strings (raw CJK takes two bytes a character) they are hundreds of megabytes, held for the whole
run. A worklist is filled by one SQL statement straight from the ledger, keeps the order it was
given (stalest first), and hands out a page of items at a time; memory stays flat at any size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import sqlite_utils

PAGE = 1000


class Worklist:
    """An ordered list of text items in `temp.worklist_<name>` (one per connection)."""

    def __init__(self, db: sqlite_utils.Database, name: str):
        self.db = db
        self.table = f"temp.worklist_{name}"
        with db.conn:
            db.execute(f"drop table if exists {self.table}")
            db.execute(f"create temp table worklist_{name} (item text)")
        self._length = 0

    @classmethod
    def of(cls, db: sqlite_utils.Database, name: str, items: Iterable[str]) -> Worklist:
        """A worklist of items named explicitly (an audit's few URLs)."""
        worklist = cls(db, name)
        with db.conn:
            db.conn.executemany(f"insert into {worklist.table} (item) values (?)",
                                ((item,) for item in items))
        worklist._count()
        return worklist

    def fill(self, select: str, params: dict | tuple = ()) -> Worklist:
        """Append the first column of `select`, in its order."""
        with self.db.conn:
            self.db.execute(f"insert into {self.table} (item) {select}", params)
        self._count()
        return self

    def _count(self) -> None:
        self._length = self.db.execute(f"select count(*) from {self.table}").fetchone()[0]

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[str]:
        """Page by page; each page is read whole, so no cursor stays open while we write."""
        last = 0
        while True:
            rows = self.db.execute(
                f"select rowid, item from {self.table} where rowid > ? order by rowid limit ?",
                [last, PAGE]).fetchall()
            if not rows:
                return
            yield from (item for _, item in rows)
            last = rows[-1][0]

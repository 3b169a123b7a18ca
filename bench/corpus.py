"""Clone the real 269-article sample into a corpus of any size.

Throughput on 269 articles measures start-up, not the run, and the full 49,118-article corpus
is not on this machine. So the sample is cloned: a clone keeps its source's bytes (front matter
layout and quoting, raw CJK, `%20`, `%EF%BF%BD`, `?query` avatars, the files with control
characters) and changes only what must differ for it to be another article: the article id in
`url`/`original_url`, the snapshot and image timestamps (shifted), and the image file names
(suffixed with the clone round, so images shared by several sources stay shared within a
round). Round 0 is the real sample unchanged. The generator returns a manifest of what it wrote
so the archive, the naive baseline and lychee are all fed the same facts.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "articles"
ID_STRIDE = 100_000  # clone round c of article n gets id n + c * ID_STRIDE (real ids < 50,000)
SHIFT_SECONDS = 3601  # clone round c shifts every timestamp by c hours and c seconds
TS_FORMAT = "%Y%m%d%H%M%S"

_URL_LINE = re.compile(r'^(url: ")(.*)(")$', re.M)
_ORIGINAL_LINE = re.compile(r'^(original_url: ")(.*)(")$', re.M)
_SNAPSHOT = re.compile(r"https://web\.archive\.org/web/(\d{14})/(.*)", re.S)
_IM_URL = re.compile(r"(https://web\.archive\.org/web/)(\d{14})(im_/)([^\")\s]+)")
# the images preserver reads: <img src="..."> and ![..](..)
_IMAGE_REF = re.compile(r'(?:src="|!\[[^\]]*\]\()(https://web\.archive\.org/web/(\d{14})im_/'
                        r'([^")\s]+))')
_ARTICLE_ID = re.compile(r"article_(\d+)\.md$")


@dataclass
class Image:
    src: str  # as written in the article
    timestamp: str
    original: str


@dataclass
class Article:
    path: str  # relative to the corpus folder
    snapshot: str  # the `url` field
    timestamp: str
    embedded: str  # the original embedded in the snapshot URL
    original: str  # the `original_url` field
    images: list[Image] = field(default_factory=list)


def sample_files(sample: Path = SAMPLE) -> list[tuple[int, Path]]:
    """(article id, file) of every real article, by id."""
    found = [(int(_ARTICLE_ID.search(p.name).group(1)), p) for p in sample.rglob("article_*.md")]
    if not found:
        raise FileNotFoundError(f"no articles under {sample}")
    return sorted(found)


def shift(ts: str, rounds: int) -> str:
    when = datetime.strptime(ts, TS_FORMAT) + timedelta(seconds=rounds * SHIFT_SECONDS)
    return when.strftime(TS_FORMAT)


def rename_image(original: str, rounds: int) -> str:
    """`.../photo_large.png?123` -> `.../photo_large-c3.png?123` (round 0 unchanged)."""
    if rounds == 0:
        return original
    path, sep, query = original.partition("?")
    head, slash, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    name = f"{stem}-c{rounds}.{ext}" if dot else f"{name}-c{rounds}"
    return f"{head}{slash}{name}{sep}{query}"


def rewrite_id(url: str, old: int, new: int) -> str:
    """The article id in `/article/<id>/` and in the `-<id>` slug suffix."""
    url = re.sub(rf"(?<=/article/){old}(?=/|$)", str(new), url)
    return re.sub(rf"(?<=-){old}(?=/|$)", str(new), url)


def clone_text(text: str, old: int, new: int, rounds: int) -> str:
    def line(match: re.Match) -> str:
        value = rewrite_id(match.group(2), old, new)
        snap = _SNAPSHOT.fullmatch(value)
        if snap:
            value = f"https://web.archive.org/web/{shift(snap.group(1), rounds)}/{snap.group(2)}"
        return match.group(1) + value + match.group(3)

    def image(match: re.Match) -> str:
        prefix, ts, mod, original = match.groups()
        return prefix + shift(ts, rounds) + mod + rename_image(original, rounds)

    text = _URL_LINE.sub(line, text, count=1)
    text = _ORIGINAL_LINE.sub(line, text, count=1)
    return _IM_URL.sub(image, text)


def describe(path: str, text: str) -> Article:
    """What a written article names, read back with plain regular expressions."""
    snapshot = _URL_LINE.search(text).group(2)
    ts, embedded = _SNAPSHOT.fullmatch(snapshot).groups()
    images = [Image(*m.groups()) for m in _IMAGE_REF.finditer(text)]
    return Article(path, snapshot, ts, embedded, _ORIGINAL_LINE.search(text).group(2), images)


def folder_of(article_id: int) -> str:
    low = (article_id - 1) // 1000 * 1000 + 1
    return f"{low}-{low + 999}"


def generate(dest: Path, count: int, sample: Path = SAMPLE) -> list[Article]:
    """Write `count` articles under dest (real layout: <range>/article_<id>.md)."""
    sources = [(n, p, p.read_bytes().decode("utf-8")) for n, p in sample_files(sample)]
    articles = []
    for i in range(count):
        old, _, text = sources[i % len(sources)]
        rounds = i // len(sources)
        new = old + rounds * ID_STRIDE
        rel = f"{folder_of(new)}/article_{new}.md"
        written = clone_text(text, old, new, rounds)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(written.encode("utf-8"))
        articles.append(describe(rel, written))
    return articles


def save_manifest(articles: list[Article], path: Path) -> None:
    path.write_text(json.dumps([asdict(a) for a in articles], ensure_ascii=False),
                    encoding="utf-8")


def load_manifest(path: Path) -> list[Article]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [Article(**{**r, "images": [Image(**i) for i in r["images"]]}) for r in rows]

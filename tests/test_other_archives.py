"""Other archives through Memento TimeMaps: for a snapshot or image the Wayback Machine lacks,
the nearest memento elsewhere is recorded, and an image found there is saved."""

import sqlite_utils

from preserver.memento import parse_timemap
from tests.conftest import PNG, closed_port, run_cli, write_article, write_config
from tests.servers import LiveSite

WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"


def timemap(original: str, mementos: list[tuple[str, str]]) -> bytes:
    lines = [f'<{original}>; rel="original"']
    lines += [f'<{url}>; rel="memento"; datetime="{when}"' for url, when in mementos]
    return (",\n".join(lines) + "\n").encode()


def test_parse_timemap_reads_every_memento_rel():
    text = ('<http://x.com/>; rel="original",\n'
            '<http://a/20100101000000/http://x.com/>; rel="first memento"; '
            'datetime="Fri, 01 Jan 2010 00:00:00 GMT",\n'
            '<http://a/timemap>; rel="self"; type="application/link-format",\n'
            '<http://a/20200101000000/http://x.com/a,b>; rel="last memento"; '
            'datetime="Wed, 01 Jan 2020 00:00:00 GMT"')
    assert [(m.url, m.timestamp) for m in parse_timemap(text)] == [
        ("http://a/20100101000000/http://x.com/", "20100101000000"),
        ("http://a/20200101000000/http://x.com/a,b", "20200101000000")]


def test_lacking_snapshots_and_images_are_found_in_other_archives(tmp_path, corpus, archive):
    image = f"{HK}/uploads/lost.png"
    with LiveSite() as other, LiveSite() as empty:
        # "other" holds the image (two mementos) and the article; "empty" has nothing
        other.route(f"/timemap/link/{image}", body=timemap(image, [
            (other.url("/memento/2019/lost.png"), "Tue, 01 Jan 2019 00:00:00 GMT"),
            (other.url("/memento/2021/lost.png"), "Mon, 12 Jul 2021 00:00:00 GMT")]),
            content_type="application/link-format")
        other.route("/memento/2021/lost.png", body=PNG + b"elsewhere", content_type="image/png")
        other.route(f"/timemap/link/{HK}/article/1", body=timemap(f"{HK}/article/1", [
            (other.url("/memento/2020/article/1"), "Wed, 01 Jan 2020 00:00:00 GMT")]),
            content_type="application/link-format")
        write_article(corpus, "a.md", f"{WB}/{TS}/{HK}/article/1", f"{HK}/article/1",
                      [f"{WB}/{TS}im_/{image}"])
        config = write_config(
            tmp_path, archive, corpus, origins={HK: f"http://127.0.0.1:{closed_port()}"},
            tables=f'[memento]\narchives = ["other", "empty"]\n'
                   f'endpoints = {{ "other" = "{other.url("/timemap/link/")}", '
                   f'"empty" = "{empty.url("/timemap/link/")}" }}')
        assert run_cli("run", "--config", str(config)).exit_code == 0
    db = sqlite_utils.Database(tmp_path / "preserver.db")
    alternates = {(r["url"], r["archive"]): r for r in db["alternates"].rows}
    snap = alternates[(f"{WB}/{TS}/{HK}/article/1", "other")]
    assert (snap["memento_timestamp"], snap["mementos"]) == ("20200101000000", 1)
    assert alternates[(f"{WB}/{TS}/{HK}/article/1", "empty")]["memento_url"] is None
    lost = alternates[(f"{WB}/{TS}im_/{image}", "other")]
    assert lost["memento_timestamp"] == "20210712000000"  # the nearest of two
    row = db["images"].get(f"{WB}/{TS}im_/{image}")
    assert (row["status"], row["source_url"]) == ("saved", lost["memento_url"])
    data = (tmp_path / "media" / row["local_path"]).read_bytes()
    assert data == PNG + b"elsewhere"

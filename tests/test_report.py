"""The ledger summary counts what the current corpus holds: each URL once, whatever number of
articles cite it, and nothing of articles whose file is gone or unreadable."""

from preserver.articles import Article
from preserver.ledger import Ledger, article_rows, open_ledger
from preserver.report import ledger_summary
from preserver.status import ParseStatus

WB = "https://web.archive.org/web/20200101000000"
HK = "https://www.hkcnews.com"


def article(n: int, images: list[str], status=ParseStatus.OK) -> Article:
    return Article(path=f"a/{n}.md", url=f"{WB}/{HK}/article/{n}",
                   original_url=f"{HK}/article/{n}", images=images, parse_status=status)


def test_summary_counts_distinct_urls_of_current_articles(tmp_path):
    ledger = Ledger(open_ledger(tmp_path / "l.db"))
    ledger.start_run("scan", "corpus")
    shared, own = f"{WB}im_/{HK}/shared.png", f"{WB}im_/{HK}/own.png"
    articles = [article(1, [shared]), article(2, [shared, own]),
                article(3, [f"{WB}im_/{HK}/removed.png"]),
                article(4, [f"{WB}im_/{HK}/broken.png"], ParseStatus.ERROR)]
    ledger.record_articles([article_rows(a) for a in articles])
    ledger.mark_removed(["a/3.md"])
    ledger.record_images([{"url": own, "status": "saved"}])

    summary = ledger_summary(ledger.db)
    assert summary["articles"]["total"] == 3  # 4 is unreadable but current; 3 is gone
    assert summary["urls"]["snapshot"] == {"unchecked": 2}
    assert summary["urls"]["original"] == {"unchecked": 2}
    assert summary["urls"]["image"] == {"unchecked": 2}  # shared once; removed, broken: none
    assert summary["images"] == {"saved": 1, "unsaved": 1}

"""`preserver serve` in a real browser: a ledger built by a real `preserver run` against the
local archive, Datasette started by the real CLI, and Debian's headless Chromium driven by
selenium, looking at what a person would see. Screenshots go to /tmp/preserver-screenshots/.

Needs Debian's `chromium` and `chromium-driver` and the `datasette` and `test` extras. Without
the browser the browser tests skip, saying how to install it; with PRESERVER_REQUIRE_BROWSER=1
(.ci/run sets it, and installs the browser) a missing browser fails them.

The saved images have the real corpus's names (CJK under `news_新聞/`, spaces, `'`, `%`): every
thumbnail must draw and every "open the saved file" link must answer 200.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from preserver import health
from preserver import serve as serve_module
from preserver.ledger import SCHEMA, VIEWS, open_ledger
from preserver.status import ImageStatus, UrlStatus
from tests.conftest import REPO, run_cli, write_article, write_config
from tests.servers import LiveSite, WaybackArchive

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path("/tmp/preserver-screenshots")
WB = "https://web.archive.org/web"
HK = "https://www.hkcnews.com"
TS = "20210712022351"
DB = "preserver"  # the ledger is preserver.db
INSTALL_BROWSER = "apt-get install chromium chromium-driver"
# image paths on the site as the corpus spells them (raw CJK, %20 for a space, %25 for a %) ...
RALLY = "news_新聞/hk-discuss/2017/09/法庭-李明哲.png"
SWEEPER = "news_新聞/hk-discuss/2021/03/清潔工%20O'Brien-專訪-100%25.png"
NEVER = "news_新聞/photo/2020/01/維港夜景%20從未存檔.png"
ERROR_PAGE = "news_新聞/photo/2020/01/錯誤頁.png"
# ... and the files they are saved as, under media/<host>/
SAVED_FILES = {"www.hkcnews.com/news_新聞/hk-discuss/2017/09/法庭-李明哲.png": (200, 60, 40),
               "www.hkcnews.com/news_新聞/hk-discuss/2021/03/清潔工 O'Brien-專訪-100%.png":
               (40, 90, 200)}


def png(width: int = 96, height: int = 64, rgb: tuple = (200, 60, 40)) -> bytes:
    """A real PNG a browser can draw (the thumbnail must show)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


# -- the world: a small corpus, two real runs ----------------------------------------------------

ARTICLES = [  # n, title, date, category, snapshot timestamp, images, what happens
    (1, "Rally at Victoria Park 維園集會", "2019-06-04", "News", TS, [RALLY], "ok"),
    (2, "Legco vote postponed 立法會押後", "2019-06-12", "News", "20190101000000", [],
     "snapshot never archived"),
    (3, "Photo essay: harbour at night 攝影", "2020-01-05", "Photo", TS,
     [NEVER, ERROR_PAGE], "images missing"),
    (4, "Interview with a street sweeper 專訪", "2021-03-01", "Interview", "20230306093752",
     [SWEEPER], "ok"),
    (5, "Markets close early 股市", "2020-01-20", "News", "20200101000000", [],
     "snapshot redirected to a nearby capture"),
    (6, "Typhoon signal 8 颱風", "2021-03-15", "Photo", "20170101000000", [], "ok"),
]


def build_world(root: Path, archive: WaybackArchive, site: LiveSite) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    archive.add(f"{HK}/{RALLY}", TS, png(), "image/png")
    archive.add(f"{HK}/{SWEEPER}", "20230306093752", png(rgb=(40, 90, 200)), "image/png")
    archive.add(f"{HK}/{ERROR_PAGE}", TS, b"<html>Error</html>", "image/png")
    for n, title, date, category, ts, images, what in ARTICLES:
        original = f"{HK}/article/{n}"
        if what == "snapshot redirected to a nearby capture":
            archive.add(original, "20200105000000", b"<html><title>a</title></html>")
        elif what != "snapshot never archived":
            archive.add(original, ts, b"<html><title>a</title></html>")
        path = write_article(corpus, f"{date[:4]}/article_{n}.md", f"{WB}/{ts}/{original}",
                             original, [f"{WB}/{ts}im_/{HK}/{i}" for i in images],
                             title=title)
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('date: "2019-06-04"', f'date: "{date}"')
                        .replace('category: "眾聞"', f'category: "{category}"'), encoding="utf-8")
        site.route(f"/article/{n}", body=b"<html><title>a</title></html>")
    site.route("/article/2", status=404)
    config = write_config(root, archive, corpus, origins={HK: site.base_url})
    first = run_cli("run", "--config", str(config))
    assert first.exit_code == 0, first.output
    site.route("/article/1", status=410)  # the original of article 1 goes away
    second = run_cli("run", "--config", str(config))
    assert second.exit_code == 1, second.output  # something got worse
    return config


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with WaybackArchive() as archive, LiveSite() as site:
        yield build_world(tmp_path_factory.mktemp("world"), archive, site)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def preserver_command() -> list[str]:
    script = shutil.which("preserver", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from preserver.cli import cli; cli()"]


@pytest.fixture(scope="module")
def server(world):
    """`preserver serve` as a subprocess on a free port; its base URL once it answers."""
    port = free_port()
    log = world.parent / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*preserver_command(), "serve", "--config", str(world), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=world.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"preserver serve exited {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"preserver serve did not answer in 30 s:\n{log.read_text()}")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def require_browser(chromium: Path, chromedriver: Path) -> None:
    """Skip, in one line saying how to install them, when Chromium or its driver is missing;
    fail instead under PRESERVER_REQUIRE_BROWSER=1 (CI)."""
    missing = [str(p) for p in (chromium, chromedriver) if not p.exists()]
    if missing:
        reason = (f"{' and '.join(missing)} not found; to run the browser tests: "
                  f"{INSTALL_BROWSER}")
        if os.environ.get("PRESERVER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (PRESERVER_REQUIRE_BROWSER=1 requires them)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    require_browser(CHROMIUM, CHROMEDRIVER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--window-size=1400,1000", "--lang=en-US",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Saves full-page screenshots under tmp and copies them to /tmp/preserver-screenshots/."""
    folder = tmp_path_factory.mktemp("screenshots")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shoot(driver, name: str) -> Path:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, max(1000, min(int(height) + 120, 4000)))
        path = folder / f"{name}.png"
        assert driver.save_screenshot(str(path)), f"could not save {path}"
        shutil.copy(path, SCREENSHOTS / path.name)
        driver.set_window_size(1400, 1000)
        return path

    return shoot


def open_page(driver, url: str):
    from selenium.webdriver.common.by import By

    driver.get(url)
    assert "Internal Server Error" not in driver.page_source
    return driver.find_element(By.TAG_NAME, "body").text


def table_rows(driver) -> list[dict]:
    """The rows of the page's results table as {column: text}."""
    from selenium.webdriver.common.by import By

    table = driver.find_element(By.CSS_SELECTOR, "table.rows-and-columns")
    headers = [th.get_attribute("data-column") or th.text.strip()
               for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return [dict(zip(headers, [td.text for td in tr.find_elements(By.TAG_NAME, "td")],
                     strict=True))
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


# -- in the browser ------------------------------------------------------------------------------

def test_database_page_shows_the_views_and_queries_with_their_titles(browser, server, shots):
    from selenium.webdriver.common.by import By

    text = open_page(browser, f"{server}/{DB}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "preserver ledger"
    shots(browser, "1-database")
    assert "Articles whose snapshot does not resolve now" in text  # descriptions too
    # Datasette counts each table within 10 ms: on a loaded machine it may show no count
    for title, rows in (("Articles", 6), ("Checks", 30)):
        shown = re.search(rf"^{title}(?: ([\d,]+) rows?)?", text, re.M)
        assert shown, title
        assert shown.group(1) in (None, str(rows)), (title, shown.group(0))
    for title in ("Article health", "Broken snapshots", "Missing images", "Newly broken",
                  "Health by year and category", "How one article stands", "History of one URL",
                  "Articles in a category", "URLs on one host"):
        assert title in text, title
    shots(browser, "1-database")


def test_images_table_links_and_shows_the_saved_files(browser, server, shots):
    """CJK, a space, `'` and `%` in the saved files' paths: every thumbnail draws and every
    "open the saved file" link answers 200 with the file's bytes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = open_page(browser, f"{server}/{DB}/images")
    assert "4 rows" in text
    assert "saved 2" in text and "missing 1" in text and "invalid 1" in text  # status facet
    thumbnails = browser.find_elements(By.CSS_SELECTOR, "td.col-local_path a img")
    assert len(thumbnails) == len(SAVED_FILES)
    for image in thumbnails:
        browser.execute_script("arguments[0].scrollIntoView()", image)  # loading="lazy"
        WebDriverWait(browser, 10).until(
            lambda _, image=image: browser.execute_script("return arguments[0].complete", image))
        assert browser.execute_script("return arguments[0].naturalWidth", image) == 96, (
            image.get_attribute("src"))
    links = {a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, "td.col-local_path a")}
    assert links == {f"{server}/media/{quote(path)}" for path in SAVED_FILES}
    for path, rgb in SAVED_FILES.items():
        with urllib.request.urlopen(f"{server}/media/{quote(path)}") as response:
            assert response.status == 200
            assert response.headers["content-type"] == "image/png"
            assert response.read() == png(rgb=rgb)
    saved = next(r for r in table_rows(browser) if r["status"] == "saved")
    assert saved["bytes"].endswith("B")  # units from the metadata
    url_link = browser.find_element(By.CSS_SELECTOR, "td.col-original_url a")
    assert url_link.get_attribute("href").startswith(f"{HK}/news_")
    browser.execute_script("window.scrollTo(0, 0)")
    shots(browser, "2-images-table")


def media_status(server: str, raw_path: str) -> int:
    try:
        with urllib.request.urlopen(f"{server}/media/{raw_path}") as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_media_route_decodes_once_and_stays_inside_the_media_folder(server, world):
    media = world.parent / "media"
    (media / "literal %41.png").write_bytes(png())  # a name that itself looks encoded
    (media / "100%.png").write_bytes(png())
    (media / "escape").symlink_to(world.parent, target_is_directory=True)
    (world.parent / "secret.txt").write_text("not for the browser", encoding="utf-8")
    assert media_status(server, quote("literal %41.png")) == 200  # literal%20%2541.png
    assert media_status(server, "literal%20%41.png") == 404  # decoded once: "literal A.png"
    assert media_status(server, "100%25.png") == 200
    assert media_status(server, "100%.png") == 200  # a lone % is no escape: itself
    for raw in ("..%2Fsecret.txt", "%2E%2E/secret.txt", "www.hkcnews.com/..%2F..%2Fsecret.txt",
                "escape/secret.txt", "www.hkcnews.com", "",
                "www.hkcnews.com/%00.png", "%FF.png", "%252E%252E/secret.txt"):
        assert media_status(server, raw) == 404, raw


def test_links_show_the_articles_title_like_a_label_column(browser, server):
    open_page(browser, f"{server}/{DB}/links?" + urlencode({"role": "original"}))
    labels = {r["article_path"] for r in table_rows(browser)}
    assert "Rally at Victoria Park 維園集會 2019/article_1.md" in labels
    assert len(labels) == 6


def test_article_health_puts_the_worst_first_with_one_verdict(browser, server, shots):
    from selenium.webdriver.common.by import By

    text = open_page(browser, f"{server}/{DB}/article_health")
    assert "Article health" in text and "6 rows" in text
    rows = table_rows(browser)
    assert [r["verdict"] for r in rows[:2]] == ["snapshot broken", "images missing"]
    broken = rows[0]
    assert broken["title"] == "Legco vote postponed 立法會押後"
    assert broken["snapshot_status"] == "not_found"
    assert {r["title"]: r["verdict"] for r in rows}["Rally at Victoria Park 維園集會"] == (
        "original gone")
    assert "snapshot broken 1" in text and "ok 3" in text  # the verdict facet
    # the path opens how that one article stands
    browser.find_element(By.LINK_TEXT, "2019/article_2.md").click()
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "How one article stands" in text
    assert {r["role"]: r["status"] for r in table_rows(browser)} == {
        "snapshot": "not_found", "original": "not_found"}
    open_page(browser, f"{server}/{DB}/article_health")
    shots(browser, "3-article-health")


def test_broken_snapshots_and_missing_images_say_why(browser, server, shots):
    text = open_page(browser, f"{server}/{DB}/broken_snapshots")
    assert "1 row" in text
    (row,) = table_rows(browser)
    assert row["title"] == "Legco vote postponed 立法會押後"
    assert row["status"] == "not_found" and "nothing archived" in row["meaning"]
    shots(browser, "4-broken-snapshots")

    open_page(browser, f"{server}/{DB}/missing_images")
    reasons = {r["status"]: r["reason"] for r in table_rows(browser)}
    assert set(reasons) == {"missing", "invalid"}
    assert "not an image" in reasons["invalid"]
    shots(browser, "5-missing-images")


def test_newly_broken_and_the_history_of_that_url(browser, server, shots):
    from selenium.webdriver.common.by import By

    text = open_page(browser, f"{server}/{DB}/newly_broken")
    assert "1 row" in text
    (row,) = table_rows(browser)
    assert (row["role"], row["status"], row["was"]) == ("original", "not_found", "ok")
    assert row["title"] == "Rally at Victoria Park 維園集會"
    shots(browser, "6-newly-broken")
    browser.find_element(By.CSS_SELECTOR, "td.col-url a.preserver-history").click()
    assert "History of one URL" in browser.find_element(By.TAG_NAME, "body").text
    assert [r["status"] for r in table_rows(browser)] == ["not_found", "ok"]  # newest first
    shots(browser, "7-url-history")


def test_canned_query_with_a_parameter(browser, server, shots):
    text = open_page(browser, f"{server}/{DB}/articles_in_category?"
                     + urlencode({"category": "Photo"}))
    assert "Articles in a category" in text
    rows = table_rows(browser)
    assert [r["title"] for r in rows] == ["Photo essay: harbour at night 攝影",
                                          "Typhoon signal 8 颱風"]
    assert rows[0]["problems"] == "2 of 2 images not saved"
    shots(browser, "8-query-category")

    open_page(browser, f"{server}/{DB}/urls_on_host?" + urlencode({"host": "hkcnews.com"}))
    statuses = [r["status"] for r in table_rows(browser)]
    assert statuses[:2] == ["not_found", "not_found"] and statuses.count("ok") == 4


def test_chart_page_draws_status_by_capture_year(browser, server, shots):
    from selenium.webdriver.common.by import By

    text = open_page(browser, f"{server}/chart")
    assert "Snapshot status by capture year" in text
    assert "Article health by publication month" in text
    chart = browser.find_element(By.CSS_SELECTOR, '[data-chart="Snapshot status by capture year"]')
    bars = {(b.get_attribute("data-key"), b.get_attribute("data-series")):
            int(b.get_attribute("data-value"))
            for b in chart.find_elements(By.CSS_SELECTOR, "rect.bar")}
    assert bars == {("2017", "ok"): 1, ("2019", "broken"): 1, ("2020", "redirected"): 1,
                    ("2021", "ok"): 2, ("2023", "ok"): 1}
    heights = {key: float(b.get_attribute("height")) for b in
               chart.find_elements(By.CSS_SELECTOR, "rect.bar")
               for key in [b.get_attribute("data-key")]}
    assert heights["2021"] == pytest.approx(2 * heights["2017"])  # drawn to scale
    assert all(b.size["height"] > 0 and b.size["width"] > 0
               for b in chart.find_elements(By.CSS_SELECTOR, "rect.bar"))  # really drawn
    months = browser.find_elements(
        By.CSS_SELECTOR, '[data-chart="Article health by publication month"] rect.bar')
    assert {m.get_attribute("data-key") for m in months} == {"2019-06", "2020-01", "2021-03"}
    shots(browser, "9-chart")
    # a bar opens its articles
    browser.find_element(By.CSS_SELECTOR, 'rect.bar[data-key="2019"]').find_element(
        By.XPATH, "..").click()
    assert [r["title"] for r in table_rows(browser)] == ["Legco vote postponed 立法會押後"]


# -- without a browser ---------------------------------------------------------------------------

def test_without_chromium_the_browser_tests_skip_saying_how_to_install_it(tmp_path,
                                                                         monkeypatch):
    monkeypatch.delenv("PRESERVER_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_browser(tmp_path / "chromium", CHROMEDRIVER)
    assert str(skipped.value) == (f"{tmp_path / 'chromium'} not found; to run the browser "
                                  "tests: apt-get install chromium chromium-driver")


def test_without_chromium_the_browser_tests_fail_when_required(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESERVER_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_browser(CHROMIUM, tmp_path / "chromedriver")
    assert "apt-get install chromium chromium-driver" in str(failed.value)
    assert "PRESERVER_REQUIRE_BROWSER=1 requires them" in str(failed.value)


def test_metadata_describes_every_table_view_and_column(tmp_path):
    metadata = serve_module.metadata_for(tmp_path / "ledger.db")
    database = metadata["databases"]["ledger"]
    assert "/ledger/article_health" in metadata["description_html"]
    db = open_ledger(tmp_path / "ledger.db")
    for name in [*SCHEMA, *VIEWS, *health.TABLES, *health.STALE_TABLES]:
        table = database["tables"][name]
        assert table.get("title") and table.get("description"), name
        assert set(table["columns"]) == set(db[name].columns_dict), name
    for name, query in database["queries"].items():
        assert query["title"] and query["description"], name
        db.execute(query["sql"], {p: "" for p in ("path", "url", "category", "start", "end",
                                                  "host", "status", "since")})


def test_every_view_works_on_an_empty_ledger(tmp_path):
    db = open_ledger(tmp_path / "empty.db")
    for name in VIEWS:
        if name != "status_meanings":
            assert db.execute(f"select count(*) from [{name}]").fetchone()[0] == 0, name
    meanings = {(r["kind"], r["status"]) for r in db.query("select * from status_meanings")}
    assert meanings == ({("url", s.value) for s in UrlStatus}
                        | {("image", s.value) for s in ImageStatus})


def test_serve_opens_the_ledger_read_only_and_not_immutable(tmp_path):
    config = serve_module.Config(tmp_path / "c", tmp_path / "p.db", tmp_path / "media")
    args = serve_module.datasette_args(config, "127.0.0.1", 8001, tmp_path / "m.json")
    assert "--immutable" not in args and "-i" not in args
    assert "--static" not in args  # Datasette's static mount 404s on CJK paths: the plugin serves
    assert args[1] == str(tmp_path / "p.db")
    assert Path(args[args.index("--plugins-dir") + 1], "preserver_links.py").exists()
    metadata = serve_module.metadata_for(config.ledger_path, config.media_path)  # the plugin's
    assert metadata["plugins"]["preserver_links"] == {"media_path": str(tmp_path / "media")}
    assert Path(args[args.index("--template-dir") + 1], "pages", "chart.html").exists()


def test_serve_without_datasette_exits_2_saying_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(serve_module, "datasette_available", lambda: False)
    result = run_cli("serve", "--config", str(tmp_path / "config.toml"))
    assert result.exit_code == 2
    assert "preserver[datasette]" in result.output


def test_serve_without_a_ledger_exits_2(tmp_path):
    with WaybackArchive() as archive:
        config = write_config(tmp_path, archive, tmp_path)
    result = run_cli("serve", "--config", str(config))
    assert result.exit_code == 2 and "no ledger yet" in result.output


def test_serve_reads_an_old_ledger_without_writing_to_it(tmp_path, caplog):
    """Readers never write: an older ledger's views stay as they are (the next run updates
    them), and serve says so."""
    ledger = tmp_path / "preserver.db"
    db = open_ledger(ledger)
    db.create_view("article_health", "select path from articles", replace=True)
    db.close()
    before = ledger.read_bytes()
    config = serve_module.Config(tmp_path, ledger, tmp_path / "media")
    assert not serve_module.views_are_current(config.ledger_path)
    serve_module.prepare_ledger(config)
    assert ledger.read_bytes() == before
    assert not serve_module.views_are_current(config.ledger_path)
    assert "older preserver" in caplog.text
    assert (tmp_path / "media").is_dir()


def test_package_data_is_declared_for_the_wheel():
    """Every file under preserver/datasette/ matches a [tool.setuptools.package-data] glob."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["preserver"]
    package = serve_module.PACKAGE_DATA.parent
    files = [p.relative_to(package).as_posix() for p in serve_module.PACKAGE_DATA.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    assert files
    for path in files:
        assert any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(path, g.replace("**/", ""))
                   for g in globs), f"{path} would not ship in the wheel"

"""The naive baseline: the loop a person writes with waybackpy and a for-loop.

For each article: one availability API call for its snapshot
(`GET /wayback/available?url=<original>&timestamp=<ts>`), then one `im_` GET per image it names,
following redirects, saving the bytes. One request at a time on one httpx sync client, with a
fixed sleep before each request so it stays under the archive's limits: polite, but unbatched,
unparallel, and with no memory of images already fetched for another article. It is here to
show what preserver's design buys over the obvious script; it shares no code with preserver.
Run it as `python -m bench.baseline ...` (from the repository) so its time and memory are its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.corpus import Article, load_manifest


def check_snapshot(client: httpx.Client, availability_url: str, article: Article) -> str:
    response = client.get(availability_url,
                          params={"url": article.original, "timestamp": article.timestamp})
    if response.status_code != 200:
        return f"http_{response.status_code}"
    closest = response.json().get("archived_snapshots", {}).get("closest")
    return "available" if closest else "not_archived"


def fetch_image(client: httpx.Client, archive_base: str, ts: str, original: str,
                out: Path) -> str:
    response = client.get(f"{archive_base}/web/{ts}im_/{original}")
    if response.status_code != 200:
        return f"http_{response.status_code}"
    name = hashlib.sha1(original.encode()).hexdigest()
    (out / name).write_bytes(response.content)
    return "saved"


def attempt(tally: Counter, kind: str, call) -> None:
    try:
        tally[f"{kind}_{call()}"] += 1
    except (httpx.HTTPError, ValueError) as exc:
        tally[f"{kind}_error_{type(exc).__name__}"] += 1


def run(articles: list[Article], archive_base: str, availability_url: str, out: Path,
        sleep_availability: float, sleep_replay: float) -> Counter:
    out.mkdir(parents=True, exist_ok=True)
    tally: Counter = Counter()
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        for article in articles:
            time.sleep(sleep_availability)
            attempt(tally, "snapshot", lambda a=article: check_snapshot(client, availability_url,
                                                                       a))
            for image in article.images:
                time.sleep(sleep_replay)
                attempt(tally, "image", lambda i=image: fetch_image(
                    client, archive_base, i.timestamp, i.original, out))
    tally["image_files"] = sum(1 for _ in out.iterdir())
    return tally


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--archive", required=True, help="archive base URL")
    parser.add_argument("--availability", required=True, help="availability API URL")
    parser.add_argument("--out", type=Path, required=True, help="folder for image bytes")
    parser.add_argument("--sleep-availability", type=float, required=True, help="seconds")
    parser.add_argument("--sleep-replay", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)
    tally = run(load_manifest(args.manifest), args.archive.rstrip("/"), args.availability,
                args.out, args.sleep_availability, args.sleep_replay)
    print(json.dumps(dict(sorted(tally.items()))))


if __name__ == "__main__":
    main()

"""Save Page Now, opt-in (`preserver save`): ask the archive to capture live originals that it
does not hold yet (or holds only from long ago), within its save limit, and believe only the
CDX index afterwards: an error answer does not always mean the page was not saved, nor a
success answer that it was.

With archive.org keys in the environment (IA_ACCESS_KEY_ID, IA_SECRET_ACCESS_KEY) it uses SPN2
(POST /save, then polls the job); without, waybackpy's save API (SPN1) in a thread, its
endpoint pointed at the configured archive. Keys are sent in one header and never written to
the ledger, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os

from .archive import Archive
from .client import HttpClient
from .errors import RequestFailed
from .ledger import now
from .queries import save_candidates

log = logging.getLogger("preserver")
KEY_ENV = ("IA_ACCESS_KEY_ID", "IA_SECRET_ACCESS_KEY")


def keys_from_environment() -> tuple[str, str] | None:
    access, secret = (os.environ.get(name, "").strip() for name in KEY_ENV)
    return (access, secret) if access and secret else None


def candidates(db, max_capture_age_days: float, limit: int | None = None) -> list[str]:
    """Originals that answer on the live web and have no capture newer than the age."""
    cutoff = (dt.datetime.now(dt.UTC) - dt.timedelta(days=max_capture_age_days)).strftime(
        "%Y%m%d%H%M%S")
    return save_candidates(db, cutoff, _iso(cutoff), limit)


class PageSaver:
    def __init__(self, client: HttpClient, archive: Archive, config, keys):
        self.client = client
        self.archive = archive
        self.config = config.save
        self.keys = keys

    async def save(self, url: str) -> dict:
        """Submit, then verify through the CDX; returns a row for the `saves` table."""
        requested = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        row = {"url": url, "requested_at": now(), "method": "spn2" if self.keys else "spn1",
               "job_id": None, "answer": None, "capture_timestamp": None, "error": None}
        try:
            if self.keys:
                row.update(await self._spn2(url))
            else:
                row.update(await self._spn1(url))
        except RequestFailed as exc:
            row["error"] = str(exc)
        row.update(await self._verify(url, requested))
        return row

    async def _spn2(self, url: str) -> dict:
        access, secret = self.keys
        response = await self.client.post(
            f"{self.archive.base_url}/save", "save", data={"url": url},
            headers={"Accept": "application/json", "Authorization": f"LOW {access}:{secret}"})
        answer = _json(response.body)
        job_id = answer.get("job_id")
        if not job_id:
            return {"answer": _short(answer) or f"HTTP {response.status_code}"}
        for _ in range(self.config.max_polls):
            await asyncio.sleep(self.config.poll_seconds)
            status = await self.client.get(f"{self.archive.base_url}/save/status/{job_id}",
                                           "save")
            answer = _json(status.body)
            if answer.get("status") != "pending":
                break
        return {"job_id": job_id, "answer": _short(answer)}

    async def _spn1(self, url: str) -> dict:
        """waybackpy's SavePageNow client, in a thread, holding a slot of the save limiter."""
        from waybackpy import WaybackMachineSaveAPI
        from waybackpy.exceptions import TooManyRequestsError, WaybackError

        from . import USER_AGENT

        api = WaybackMachineSaveAPI(url, user_agent=USER_AGENT, max_tries=1)
        api.request_url = f"{self.archive.base_url}/save/{api.url}"
        limiter = self.client.limiters["save"]
        async with limiter.slot():
            self.client.requests_sent += 1
            try:
                saved = await asyncio.to_thread(api.save)
                return {"answer": f"saved as {saved}"}
            except TooManyRequestsError:
                limiter.penalise("HTTP 429 from Save Page Now")
                return {"answer": "HTTP 429"}
            except (WaybackError, OSError) as exc:  # waybackpy wants web.archive.org URLs
                return {"answer": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}

    async def _verify(self, url: str, requested: str) -> dict:
        """A capture at or after the request, in the CDX index, is the only proof."""
        try:
            async for rows, _ in self.archive.cdx_pages(url, "exact", page_size=1000,
                                                        from_ts=requested[:8]):
                new = sorted(r.timestamp for r in rows if (r.timestamp or "") >= requested)
                if new:
                    return {"status": "verified", "capture_timestamp": new[0],
                            "verified_at": now()}
        except RequestFailed as exc:
            return {"status": "unverified", "error": f"CDX: {exc}"}
        return {"status": "not_saved", "verified_at": now()}


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _short(answer: dict) -> str:
    keys = ("status", "status_ext", "timestamp", "message")
    return ", ".join(f"{k}={answer[k]}" for k in keys if answer.get(k))


def _iso(timestamp: str) -> str:
    return dt.datetime.strptime(timestamp, "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")

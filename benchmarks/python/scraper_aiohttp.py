#!/usr/bin/env python3
"""The seeds' "production-ready" scraper pipeline, for real, with aiohttp.

producer -> asyncio.Queue(maxsize) -> N workers -> AsyncHttpClient (Semaphore,
retries decorator, asyncio.timeout) -> results queue -> one writer task that
stores every result in SQLite (WAL, batched transactions), all inside a
TaskGroup, shut down with queue.join() and worker cancellation — the structure
of seed 000's robust_scraper_template.py with its simulated fetch replaced by
an aiohttp GET, and seed 003's WAL storage (with the standard sqlite3 module:
aiosqlite is not packaged here; the writer batches, so the loop rarely blocks).

Prints one JSON object: {"ok", "failed", "elapsed_s", "req_per_s", ...}.
Run with Debian's /usr/bin/python3 (python3-aiohttp).
"""
import argparse
import asyncio
import functools
import json
import sqlite3
import sys
import time

import aiohttp


def with_retries(max_attempts=3, delay=0.05):
    """Seed 000's retry decorator (linear backoff; never swallows cancellation)."""
    def decorator(func):
        @functools.wraps(func)
        async def wrapper(*args, **kwargs):
            last_exc = None
            for attempt in range(1, max_attempts + 1):
                try:
                    return await func(*args, **kwargs)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - the seeds retry on any error
                    last_exc = e
                    await asyncio.sleep(delay * attempt)
            raise last_exc
        return wrapper
    return decorator


class AsyncHttpClient:
    """Owns the concurrency limit (Semaphore) and the session lifecycle."""

    def __init__(self, concurrency_limit, timeout_s):
        self._sem = asyncio.Semaphore(concurrency_limit)
        self._limit = concurrency_limit
        self._timeout_s = timeout_s
        self._session = None

    async def __aenter__(self):
        connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
        self._session = aiohttp.ClientSession(connector=connector)
        return self

    async def __aexit__(self, *exc):
        await self._session.close()

    @with_retries(max_attempts=3)
    async def fetch(self, url):
        async with self._sem:
            async with asyncio.timeout(self._timeout_s):
                async with self._session.get(url) as resp:
                    body = await resp.read()
                    return resp.status, len(body)


async def producer(queue, urls):
    for url in urls:
        await queue.put(url)


async def worker(queue, results, client):
    while True:
        url = await queue.get()
        t0 = time.perf_counter()
        try:
            status, size = await client.fetch(url)
            await results.put((url, "ok", status, size, None, time.perf_counter() - t0))
        except Exception as e:  # noqa: BLE001
            await results.put((url, "failed", None, None, repr(e), time.perf_counter() - t0))
        finally:
            queue.task_done()


async def writer(results, db, batch):
    rows = []
    while True:
        row = await results.get()
        if row is None:
            break
        rows.append(row)
        if len(rows) >= batch or results.empty():
            db.executemany("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.commit()
            rows.clear()
    if rows:
        db.executemany("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()


async def amain(args):
    with open(args.urls) as f:
        urls = [line.strip() for line in f if line.strip()]
    db = sqlite3.connect(args.db)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY, outcome TEXT, status INTEGER, "
               "bytes INTEGER, error TEXT, elapsed REAL)")
    db.commit()

    queue = asyncio.Queue(maxsize=args.queue_size)
    results = asyncio.Queue(maxsize=args.queue_size)
    t0 = time.perf_counter()
    async with AsyncHttpClient(args.concurrency, args.timeout) as client:
        async with asyncio.TaskGroup() as tg:
            writer_task = tg.create_task(writer(results, db, args.batch))
            workers = [tg.create_task(worker(queue, results, client)) for _ in range(args.concurrency)]
            await tg.create_task(producer(queue, urls))
            await queue.join()
            for w in workers:
                w.cancel()
            await results.put(None)
            await writer_task
    elapsed = time.perf_counter() - t0
    ok = db.execute("SELECT COUNT(*) FROM pages WHERE outcome = 'ok' AND status = 200").fetchone()[0]
    stored = db.execute("SELECT COUNT(*) FROM pages").fetchone()[0]
    db.close()
    return {"urls": len(urls), "stored": stored, "ok": ok, "failed": stored - ok, "elapsed_s": elapsed,
            "req_per_s": len(urls) / elapsed, "concurrency": args.concurrency,
            "python": sys.version.split()[0], "aiohttp": aiohttp.__version__}


def main():
    ap = argparse.ArgumentParser(description="seeds-style aiohttp scraper pipeline")
    ap.add_argument("--urls", required=True, help="file with one URL per line")
    ap.add_argument("--db", required=True, help="SQLite database to write")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--queue-size", type=int, default=100)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(amain(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

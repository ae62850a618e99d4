"""Many callers, one limit: four OS processes on the Redis limiter, four threads on the
local one. Each caller hammers ``acquire()`` and sleeps the wait it is given; the total
granted must stay within what a bucket of the rate allows over the window (a count,
not a timing: the window is measured on the limiter's own clock around all the work).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.synchronize import Event

import redis

from workers.ratelimit import LocalRateLimiter, RateLimiter, RedisRateLimiter

RATE = 20.0
SECONDS = 3.0
CALLERS = 4


def _hammer(limiter: RateLimiter, seconds: float) -> int:
    """Ask as fast as allowed for ``seconds``; return the number of grants."""
    granted = 0
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        wait = limiter.acquire(1)
        if wait == 0.0:
            granted += 1
        else:
            time.sleep(min(wait, left))
    return granted


def _worker_process(
    url: str,
    prefix: str,
    start: Event,
    ready: multiprocessing.Queue[int],
    results: multiprocessing.Queue[int],
) -> None:
    client = redis.Redis.from_url(url)
    limiter = RedisRateLimiter(
        client, account="shared", key_prefix=prefix, requests_per_second=RATE, messages_per_second=0
    )
    ready.put(1)
    start.wait(30)
    results.put(_hammer(limiter, SECONDS))
    client.close()


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def test_four_processes_share_one_redis_limit(redis_prefix: str) -> None:
    # Imported here, not at the top: each spawned process imports this module, and
    # conftest would drag the database stack into every one of them.
    from tests.conftest import REDIS_URL

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    ready: multiprocessing.Queue[int] = ctx.Queue()
    results: multiprocessing.Queue[int] = ctx.Queue()
    args = (REDIS_URL, redis_prefix, start, ready, results)
    procs = [ctx.Process(target=_worker_process, args=args) for _ in range(CALLERS)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    client = redis.Redis.from_url(REDIS_URL)
    began = _redis_now(client)  # every process is ready; none has asked yet
    start.set()
    counts = [results.get(timeout=60) for _ in procs]
    ended = _redis_now(client)
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0

    observer = RedisRateLimiter(
        client,
        account="shared",
        key_prefix=redis_prefix,
        requests_per_second=RATE,
        messages_per_second=0,
    )
    total = sum(counts)
    assert observer.stats()["grants"] == total
    burst = observer.limits.burst_requests
    assert total <= RATE * (ended - began) + burst
    assert all(count > 0 for count in counts)  # every process got a share
    assert total >= RATE * SECONDS / 2  # and the limiter is not starving them
    client.close()


def test_four_threads_share_one_local_limit() -> None:
    limiter = LocalRateLimiter(requests_per_second=RATE, messages_per_second=0)
    counts: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CALLERS + 1)

    def run() -> None:
        barrier.wait()
        granted = _hammer(limiter, SECONDS / 2)
        with lock:
            counts.append(granted)

    threads = [threading.Thread(target=run) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    began = time.monotonic()  # the limiter's own clock
    barrier.wait()
    for thread in threads:
        thread.join()
    ended = time.monotonic()

    total = sum(counts)
    assert limiter.stats()["grants"] == total
    assert total <= RATE * (ended - began) + limiter.limits.burst_requests
    assert total >= RATE * SECONDS / 4

"""How many messages per second the sandbox provider accepts, in batches of 1000.

Run:  .venv/bin/python bench/sandbox_ceiling.py [--seconds 10] [--clients 1 2 4]

The sandbox runs in a process of its own (as `clarion sandbox` does); each client is a
process posting /v3/sms/send batches of 1000 distinct valid numbers with httpx, one request
at a time, for the given duration. Prints messages/s and requests/s per client count, and
messages per CPU-second of the sandbox process: the rate it would sustain with a core to
itself, which holds even when the clients (or anything else) compete for the CPU.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import time

import httpx
import psutil

BATCH = 1000
AUTH = ("sandbox", "sandbox-key")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int) -> None:
    from sandbox.config import SandboxConfig
    from sandbox.server import serve_forever

    serve_forever(SandboxConfig(receipt_delay_seconds=3600), "127.0.0.1", port)


def _wait_up(root: str) -> None:
    for _ in range(200):
        try:
            httpx.get(f"{root}/_sandbox/stats", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("sandbox did not start")


def _client(base: str, client_no: int, seconds: float, out: mp.Queue) -> None:
    sent = requests = 0
    offset = client_no * 10_000_000
    with httpx.Client(auth=AUTH, timeout=60) as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            start = offset + sent
            messages = [
                {
                    "to": f"+6141{(start + i) % 10_000_000:07d}",
                    "body": f"Hello {i}, sale today",
                    "custom_string": f"b{client_no}",
                }
                for i in range(BATCH)
            ]
            answer = http.post(f"{base}/sms/send", json={"messages": messages})
            answer.raise_for_status()
            sent += answer.json()["data"]["queued_count"]
            requests += 1
    out.put((sent, requests))


def measure(base: str, clients: int, seconds: float) -> tuple[float, float, float]:
    """(messages/s, requests/s, messages sent) with ``clients`` concurrent client processes."""
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(base, n, seconds, out)) for n in range(clients)]
    began = time.monotonic()
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = time.monotonic() - began
    sent = sum(r[0] for r in results)
    return sent / elapsed, sum(r[1] for r in results) / elapsed, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    port = _free_port()
    server = mp.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_up(root)
        watched = psutil.Process(server.pid)
        for clients in args.clients:
            httpx.post(f"{root}/_sandbox/reset", timeout=30)
            cpu_before = sum(watched.cpu_times()[:2])
            msgs, reqs, sent = measure(f"{root}/v3", clients, args.seconds)
            per_cpu = sent / max(1e-9, sum(watched.cpu_times()[:2]) - cpu_before)
            print(
                f"{clients} client(s): {msgs:,.0f} messages/s ({reqs:,.1f} requests of {BATCH}/s); "
                f"sandbox: {per_cpu:,.0f} messages per CPU-second"
            )
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()

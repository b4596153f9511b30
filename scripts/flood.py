#!/usr/bin/env python3
"""A connection flood against `keyward serve`, and what a normal client sees meanwhile.

The flood is the hostile tester's: CONNECTIONS connections that each send one request line
(`GET /healthz HTTP/1.1`) and then nothing, held for HOLD seconds. Meanwhile a probe opens a
fresh connection every PROBE_INTERVAL seconds and asks GET /healthz (Connection: close), with a
5 s timeout. It prints what became of the flood's connections (held by the server, answered
503, closed without an answer, not connected), the probe's answers and latencies, and, with
--pid, the server's open files and memory at their peak.

    python3 scripts/flood.py --target 127.0.0.1:8080 --connections 20000 --hold 15 --pid PID

Only the standard library; the connections are spread over --workers processes so that no
process needs more than its share of file descriptors. docs/serving.md has the figures.
"""

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import threading
import time

REQUEST_LINE = b"GET /healthz HTTP/1.1\r\n"


async def one(host, port, hold, fates, connecting):
    """One flood connection: connect, send the request line, wait for the server's verdict
    (timed from the connection's opening)."""
    start = time.monotonic()
    async with connecting:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), timeout=10
            )
            writer.write(REQUEST_LINE)
            await writer.drain()
        except Exception as e:  # noqa: BLE001 - every failure is a fate to count
            fates.append(("not connected: " + type(e).__name__, time.monotonic() - start))
            return
    connected = time.monotonic()
    try:
        first = await asyncio.wait_for(reader.read(64), timeout=hold)
        if first.startswith(b"HTTP/1.1 503"):
            fate = "answered 503"
        elif first:
            fate = "answered " + first[9:12].decode(errors="replace")
        else:
            fate = "closed, no answer"
    except asyncio.TimeoutError:
        fate = "still open at the end"
    except (ConnectionError, OSError):
        fate = "reset, no answer"
    after = time.monotonic() - connected
    if "no answer" in fate:
        fate += " (<1 s)" if after < 1 else " (>=1 s)"
    fates.append((fate, after))
    writer.close()


async def flood(host, port, count, hold, parallel_connects):
    fates = []
    connecting = asyncio.Semaphore(parallel_connects)
    await asyncio.gather(*(one(host, port, hold, fates, connecting) for _ in range(count)))
    return fates


def worker(host, port, count, hold, parallel_connects, out):
    out.put(asyncio.run(flood(host, port, count, hold, parallel_connects)))


def probe(host, port, interval, stop, results):
    """A normal client: a fresh connection per request, as curl would."""
    while not stop.is_set():
        start = time.monotonic()
        status = "error"
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.settimeout(5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: keyward\r\nConnection: close\r\n\r\n")
                data = s.recv(64)
                status = data[9:12].decode(errors="replace") if data else "closed"
        except socket.timeout:
            status = "timeout"
        except OSError as e:
            status = type(e).__name__
        results.append((start, status, time.monotonic() - start))
        stop.wait(interval)


def watch_server(pid, stop, peak):
    while not stop.is_set():
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            with open(f"/proc/{pid}/status") as f:
                rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            peak["fds"] = max(peak.get("fds", 0), fds)
            peak["rss_kib"] = max(peak.get("rss_kib", 0), rss)
        except (OSError, StopIteration):
            pass
        stop.wait(0.2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="127.0.0.1:8080")
    p.add_argument("--connections", type=int, default=20000)
    p.add_argument("--hold", type=float, default=15.0, help="seconds each connection waits")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--parallel-connects", type=int, default=256, help="per worker")
    p.add_argument("--probe-interval", type=float, default=0.2)
    p.add_argument("--pid", type=int, help="the server's pid, to sample its open files and memory")
    a = p.parse_args()
    host, port = a.target.rsplit(":", 1)
    port = int(port)

    stop = threading.Event()
    probes, peak = [], {}
    threads = [threading.Thread(target=probe, args=(host, port, a.probe_interval, stop, probes))]
    if a.pid:
        threads.append(threading.Thread(target=watch_server, args=(a.pid, stop, peak)))
    for t in threads:
        t.start()
    time.sleep(1)  # a baseline before the flood

    out = multiprocessing.Queue()
    share = [a.connections // a.workers + (i < a.connections % a.workers) for i in range(a.workers)]
    began = time.monotonic()
    procs = [
        multiprocessing.Process(target=worker, args=(host, port, n, a.hold, a.parallel_connects, out))
        for n in share
    ]
    for pr in procs:
        pr.start()
    fates = []
    for _ in procs:
        fates.extend(out.get())
    for pr in procs:
        pr.join()
    ended = time.monotonic()
    time.sleep(1)
    stop.set()
    for t in threads:
        t.join()

    print(f"flood: {a.connections} connections, one request line each, held up to {a.hold:.0f} s, "
          f"{ended - began:.1f} s in all")
    kinds = {}
    for fate, after in fates:
        kinds.setdefault(fate, []).append(after)
    for fate, times in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        times.sort()
        print(f"  {fate:<28} {len(times):>6}   after p50 {times[len(times) // 2]:6.2f} s, "
              f"max {times[-1]:6.2f} s")
    during = [r for r in probes if began <= r[0] <= ended]
    print(f"probe during the flood: {len(during)} requests, one every {a.probe_interval} s")
    statuses = {}
    for _, status, took in during:
        statuses.setdefault(status, []).append(took)
    for status, times in sorted(statuses.items()):
        times.sort()
        print(f"  {status:<10} {len(times):>5}   latency p50 {statistics.median(times) * 1000:7.1f} ms, "
              f"max {times[-1] * 1000:7.1f} ms")
    ok = [r[0] - began for r in during if r[1] == "200"]
    if ok:
        print(f"  first 200 at {ok[0]:.2f} s; answered 200 from {ok[-1]:.2f} s on? "
              f"{'yes' if all(r[1] == '200' for r in during if r[0] - began >= ok[-1]) else 'no'}")
    gaps = []
    last = 0.0
    for r in during:
        if r[1] == "200":
            gaps.append(r[0] - began - last)
            last = r[0] - began
    if gaps:
        print(f"  longest stretch without a 200: {max(gaps):.2f} s")
    if peak:
        print(f"server peak: {peak.get('fds')} open files, {peak.get('rss_kib', 0) / 1024:.0f} MiB resident")


if __name__ == "__main__":
    main()

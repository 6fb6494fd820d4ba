#!/usr/bin/env python3
"""Measure the resident memory of idle keep-alive connections, and serve many at once.

    idle_memory.py NETBENCH_BINARY [CONNECTIONS ...]

Starts `NetBench hello` as the upstream and `NetBench proxy` (one event loop) on free
127.0.0.1 ports. For each count (default 2000 and 10000), it opens that many connections to the
proxy, sends one keep-alive request on each and reads the 200, then reads the proxy's VmRSS while
all of them sit idle. It prints the resident memory per idle connection (the VmRSS growth over
the proxy's state before the connections, divided by their number) and any request that did not
get a 200. Everything stays on loopback; every wait is bounded.
"""

import os
import resource
import selectors
import socket
import subprocess
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n"
DEADLINE_SECONDS = 60


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listened on 127.0.0.1:{port} within 20 s")


def resident_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_idle(port, count):
    """Open `count` connections that each got a response to one request; return them and the failures."""
    sockets = []
    selector = selectors.DefaultSelector()
    for _ in range(count):
        connection = socket.socket()
        connection.setblocking(False)
        connection.connect_ex(("127.0.0.1", port))
        sockets.append(connection)
        selector.register(connection, selectors.EVENT_WRITE, bytearray())
    pending = count
    failures = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while pending and time.monotonic() < deadline:
        for key, events in selector.select(timeout=1):
            connection = key.fileobj
            if events & selectors.EVENT_WRITE:
                try:
                    connection.send(REQUEST)
                except OSError:
                    failures += 1
                    pending -= 1
                    selector.unregister(connection)
                    continue
                selector.modify(connection, selectors.EVENT_READ, key.data)
                continue
            try:
                chunk = connection.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            key.data.extend(chunk)
            head_end = key.data.find(b"\r\n\r\n")
            if not chunk or head_end >= 0:
                if not key.data.startswith(b"HTTP/1.1 200"):
                    failures += 1
                pending -= 1
                selector.unregister(connection)
    failures += pending
    selector.close()
    return sockets, failures


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    counts = [int(value) for value in sys.argv[2:]] or [2000, 10000]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    required_files = max(counts) + 1000
    if soft < required_files:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(required_files, hard), hard))
    upstream_port, proxy_port = free_port(), free_port()
    upstream = subprocess.Popen(
        [binary, "hello", "--listen", f"127.0.0.1:{upstream_port}", "--loops", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen(
        [binary, "proxy", "--listen", f"127.0.0.1:{proxy_port}",
         "--upstream", f"http://127.0.0.1:{upstream_port}", "--loops", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(upstream_port)
        wait_listening(proxy_port)
        warm, _ = open_idle(proxy_port, 50)
        for connection in warm:
            connection.close()
        time.sleep(0.5)
        for count in counts:
            before = resident_kib(proxy.pid)
            started = time.monotonic()
            sockets, failures = open_idle(proxy_port, count)
            elapsed = time.monotonic() - started
            time.sleep(0.5)
            after = resident_kib(proxy.pid)
            per_connection = (after - before) * 1024 / count
            print(f"{count} idle connections: {per_connection / 1024:.2f} KiB resident each "
                  f"(VmRSS {before} -> {after} KiB), {failures} without a 200, "
                  f"all answered in {elapsed:.1f} s")
            for connection in sockets:
                connection.close()
            time.sleep(1)
    finally:
        for process in (proxy, upstream):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Send exactly TOTAL HTTP/1.1 keep-alive GET requests to 127.0.0.1:PORT.

Usage: count_requests.py PORT TOTAL CONNECTIONS [TIMEOUT_SECONDS [HOST COOKIE_FILE]]

Each of the CONNECTIONS has one request in flight at a time. Exits non-zero on a non-200
response, a closed connection, or when TIMEOUT_SECONDS (default 600) pass. With HOST and
COOKIE_FILE, requests carry that Host and the Cookie header held in the file (one line), as
authenticated requests through the proxy service.
"""
import selectors
import socket
import sys
import time

def main():
    port, total, connections = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    deadline = time.monotonic() + float(sys.argv[4] if len(sys.argv) > 4 else 600)
    host = b"127.0.0.1:%d" % port
    extra = b""
    if len(sys.argv) > 6:
        host = sys.argv[5].encode()
        with open(sys.argv[6], "rb") as cookie_file:
            extra = b"Cookie: " + cookie_file.read().strip() + b"\r\n"
    request = (b"GET /bench HTTP/1.1\r\nHost: " + host + b"\r\nUser-Agent: count-requests\r\n"
               b"Accept: */*\r\n" + extra + b"\r\n")
    selector = selectors.DefaultSelector()
    sent = 0
    done = 0
    state = {}
    for _ in range(min(connections, total)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        sent += 1
        state[sock] = bytearray()
        selector.register(sock, selectors.EVENT_READ)
    while done < total:
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {done} responses")
        for key, _ in selector.select(timeout=5):
            sock = key.fileobj
            data = sock.recv(65536)
            if not data:
                sys.exit("connection closed by server")
            buffer = state[sock]
            buffer += data
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buffer[:end]).lower()
                if not head.startswith(b"http/1.1 200"):
                    sys.exit("unexpected response: %r" % head[:80])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(buffer) < end + 4 + length:
                    break
                del buffer[:end + 4 + length]
                done += 1
                if sent < total:
                    sock.sendall(request)
                    sent += 1
    for sock in state:
        sock.close()
    print(f"{done} responses")

main()

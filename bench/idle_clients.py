"""Hold many idle keep-alive connections open to a server: the idle-10k scenario's helper.

``python idle_clients.py HOST PORT COUNT`` opens COUNT connections, sends one keep-alive
``GET /`` on each and reads its answer (so every connection is a served keep-alive connection,
not one still waiting in the listen queue), then prints ``ready N`` (N: how many got their
answer) and holds them, sending nothing more. Each line it reads on stdin after that is
answered with ``open N``: how many of the connections the server has not closed. It exits
when stdin closes.

It is a process of its own so that its 10,000 sockets count against its own descriptor limit
and its work happens before wrk's measured run, not during it. Connections are opened in
batches, so that the server's listen queue (and the kernel's SYN queue) never overflows.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import sys
import time

BATCH = 500
DEADLINE = 60.0  # seconds for every connection to be served once; a server that cannot is reported


def raise_descriptor_limit(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 64
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise SystemExit(f"idle_clients: RLIMIT_NOFILE's hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def response_complete(data: bytes) -> bool:
    """True once ``data`` holds a whole response with a Content-Length (the hello app's)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    length = 0
    for line in data[:head_end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return len(data) >= head_end + 4 + length


def open_connections(host: str, port: int, count: int) -> list[socket.socket]:
    request = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    served: list[socket.socket] = []
    deadline = time.monotonic() + DEADLINE
    started = 0
    pending: dict[socket.socket, bytearray] = {}
    by_fd: dict[int, socket.socket] = {}
    while (started < count or pending) and time.monotonic() < deadline:
        # Keep at most one batch in flight: the rest wait here, not in the server's queues.
        while started < count and len(pending) < BATCH:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((host, port))
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                raise SystemExit(f"idle_clients: connect failed: {errno.errorcode.get(code, code)}")
            selector.register(sock, selectors.EVENT_WRITE)
            pending[sock] = bytearray()
            by_fd[sock.fileno()] = sock
            started += 1
        for key, events in selector.select(timeout=1.0):
            sock = by_fd[key.fd]
            if events & selectors.EVENT_WRITE:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    selector.unregister(sock)
                    del pending[sock]
                    sock.close()
                    continue
                sock.send(request)  # a few dozen bytes into an empty send buffer: never partial
                selector.modify(sock, selectors.EVENT_READ)
                continue
            try:
                chunk = sock.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                selector.unregister(sock)
                del pending[sock]
                sock.close()
                continue
            buffer = pending[sock]
            buffer += chunk
            if response_complete(bytes(buffer)):
                selector.unregister(sock)
                del pending[sock]
                served.append(sock)
    for sock in pending:
        sock.close()
    selector.close()
    return served


def still_open(connections: list[socket.socket]) -> int:
    """How many connections the server has not closed (a peek that would block means open)."""
    count = 0
    for sock in connections:
        try:
            data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            count += 1
            continue
        except OSError:
            continue
        if data:
            count += 1  # the server sent something unasked; the connection is still open
    return count


def main(argv: list[str]) -> int:
    host, port, count = argv[0], int(argv[1]), int(argv[2])
    raise_descriptor_limit(count)
    connections = open_connections(host, port, count)
    print(f"ready {len(connections)}", flush=True)
    for _ in sys.stdin:
        print(f"open {still_open(connections)}", flush=True)
    for sock in connections:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

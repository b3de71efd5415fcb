"""A listening socket and its clients, served a step at a time from the master's loop.

The control socket (control.py) and the metrics address (metrics_server.py) share this: no thread;
the listener and its clients are non-blocking and registered in a selector whose descriptor the
master's loop waits on beside its wake-up pipe (``fileno()``). When it is readable the loop calls
``serve()``, which does what is ready and returns without waiting, so the master never blocks on a
client. A subclass says what a client's bytes mean (``_read``) and what follows a send
(``_write``); accepting, receiving, sending and dropping are here.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time

# How many queued connections one wake-up accepts (the rest at the next).
ACCEPT_BURST = 16


class Client:
    __slots__ = ("sock", "inbox", "outbox", "since")

    def __init__(self, sock: socket.socket, since: float) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.since = since  # when it was accepted


class SteppedServer:
    """The listener and its clients; ``what`` names the server in log lines."""

    what = "server"

    def __init__(self, listener: socket.socket, log: logging.Logger) -> None:
        self._listener = listener
        self._log = log
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._clients: dict[int, Client] = {}

    def fileno(self) -> int:
        """Readable when something is ready: the master's loop waits on it with its wake-up pipe."""
        return self._selector.fileno()

    def serve(self) -> None:
        """Do what is ready, without waiting."""
        for key, events in self._selector.select(0):
            if key.data is None:
                self._accept()
                continue
            client: Client = key.data
            if client.sock.fileno() < 0:
                continue  # dropped earlier in this round
            try:
                if events & selectors.EVENT_READ:
                    self._read(client)
                if events & selectors.EVENT_WRITE and client.sock.fileno() >= 0:
                    self._write(client)
            except Exception:  # a bug of ours costs that client, never the master
                self._log.exception("%s: dropping a client", self.what)
                if client.sock.fileno() >= 0:
                    self._drop(client)

    def _accept(self) -> None:
        now = time.monotonic()
        self._prune(now)
        for _ in range(ACCEPT_BURST):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: try again at the next turn
                self._log.warning("%s: cannot accept: %s", self.what, exc)
                return
            self._make_room()
            sock.setblocking(False)
            client = Client(sock, now)
            self._clients[sock.fileno()] = client
            self._selector.register(sock, selectors.EVENT_READ, client)

    def _prune(self, now: float) -> None:
        """Before accepting: drop the clients that have had their time (none, by default)."""

    def _make_room(self) -> None:
        """Before holding one more client: drop one if there are too many (none, by default)."""

    def _receive(self, client: Client, most: int) -> bytes | None:
        """What the client sent, at most ``most`` bytes; None if nothing is there yet, or if the
        client has gone (then it is dropped)."""
        try:
            data = client.sock.recv(most)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return None
        return data

    def _send(self, client: Client) -> bool:
        """Send what the client's outbox holds, as much as it takes; False if the client failed
        (then it is dropped)."""
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(client)
            return False
        del client.outbox[:sent]
        return True

    def _read(self, client: Client) -> None:
        raise NotImplementedError

    def _write(self, client: Client) -> None:
        raise NotImplementedError

    def _drop(self, client: Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        try:
            self._selector.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()

    def close_in_child(self) -> None:
        """In a forked worker: let go of the client descriptors and the selector."""
        for client in self._clients.values():
            client.sock.close()
        self._selector.close()

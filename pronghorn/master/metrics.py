"""What /metrics says (--metrics-bind): the workers' counters summed, in Prometheus's text format.

Theory of operation
-------------------
Each worker counts into its own page shared with the master (cycle/counters.py: requests begun
and ended as they happen, the rest copied in at each heartbeat and at the worker's exit). The
master keeps ``gone``: the sum of the counts of every worker it has reaped, folded in by ``worker_gone`` as it
reaps one, so that a counter never goes back when a worker is replaced (--max-requests, HUP, a
crash). A scrape adds the living workers' pages to it. Gauges (in flight, open connections) are the
living workers' alone. The master's own counts (restarts by reason) live here too, and the
readings it makes at the scrape: the listen queues (TCP_INFO) and each worker's RSS (/proc).

Nothing here runs per request: the cost of a scrape is the master's, a few microseconds per worker.
"""

from __future__ import annotations

import socket
from typing import Iterable, Sequence

from ..cycle.counters import (BUCKETS, BYTES_IN, BYTES_OUT, CONNECTIONS, DURATION_BOUNDS, METHODS,
                              ENDED, REQUESTS, ROW, SIZE, STARTED, STATUS_CLASSES,
                              RequestCounters)
from .listeners import pending_connections
from .memory import HAVE_PROC, resident_bytes

#: Why a worker was replaced: --max-requests, --timeout (aborted), died unasked, --max-worker-memory.
RESTART_REASONS = ("max-requests", "timeout", "crash", "memory")

#: The exposition format's content type (version 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Slots that are not counters: never folded into the totals of the workers that are gone.
_GAUGES = frozenset({STARTED, ENDED, CONNECTIONS})


class Metrics:
    def __init__(self) -> None:
        self.gone = [0] * SIZE
        self.gone_seconds = 0.0
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)

    def new_counters(self) -> RequestCounters:
        """A page for the worker about to be forked."""
        return RequestCounters()

    def worker_gone(self, counters: RequestCounters) -> None:
        """The worker was reaped: its counts join the totals, and its page is let go."""
        gone = self.gone
        for slot, value in enumerate(counters.values()):
            if slot not in _GAUGES:
                gone[slot] += value
        self.gone_seconds += counters.duration()
        counters.close()

    def restarted(self, reason: str) -> None:
        self.restarts[reason] += 1

    def render(self, workers: Sequence[tuple[int, RequestCounters]],
               listeners: Iterable[socket.socket]) -> str:
        """The exposition: ``workers`` are the living ones (pid, counters)."""
        total = list(self.gone)
        seconds = self.gone_seconds
        in_flight = connections = 0
        for _, counters in workers:
            values = counters.values()
            for slot in range(SIZE):
                if slot not in _GAUGES:
                    total[slot] += values[slot]
            seconds += counters.duration()
            # (Begun and ended are written as they happen, the rest at each heartbeat: exact.
            # Clamped: a task cancelled before it started would count one ended too many.)
            in_flight += max(0, values[STARTED] - values[ENDED])
            connections += values[CONNECTIONS]
        out: list[str] = []

        family(out, "pronghorn_requests_total", "counter",
               "Requests answered, by method and status class.")
        for row, method in enumerate(METHODS):
            counts = total[REQUESTS + row * ROW:REQUESTS + (row + 1) * ROW]
            # (1xx to 5xx; a status the framer allows past 599, up to 999, is reported as 5xx.)
            by_class = counts[1:5] + [sum(counts[5:])]
            for cls, value in zip(STATUS_CLASSES, by_class):
                out.append(f'pronghorn_requests_total{{method="{method}",status="{cls}"}} {value}')

        family(out, "pronghorn_request_duration_seconds", "histogram",
               "Time from the request's arrival at the app to the end of its response.")
        cumulative = 0
        for i, bound in enumerate(DURATION_BOUNDS):
            cumulative += total[BUCKETS + i]
            out.append(f'pronghorn_request_duration_seconds_bucket{{le="{bound!r}"}} {cumulative}')
        cumulative += total[BUCKETS + len(DURATION_BOUNDS)]
        out.append(f'pronghorn_request_duration_seconds_bucket{{le="+Inf"}} {cumulative}')
        out.append(f"pronghorn_request_duration_seconds_sum {seconds!r}")
        out.append(f"pronghorn_request_duration_seconds_count {cumulative}")

        family(out, "pronghorn_requests_in_flight", "gauge",
               "Requests the workers are on (in the app, or sending their response).")
        out.append(f"pronghorn_requests_in_flight {in_flight}")
        family(out, "pronghorn_request_body_bytes_total", "counter",
               "Request body bytes received (Content-Length, or a chunked body's size).")
        out.append(f"pronghorn_request_body_bytes_total {total[BYTES_IN]}")
        family(out, "pronghorn_response_body_bytes_total", "counter",
               "Response body bytes sent.")
        out.append(f"pronghorn_response_body_bytes_total {total[BYTES_OUT]}")
        family(out, "pronghorn_connections_open", "gauge",
               "Client connections the workers hold (as of each worker's last heartbeat).")
        out.append(f"pronghorn_connections_open {connections}")

        family(out, "pronghorn_listen_backlog", "gauge",
               "Connections waiting in a TCP listener's accept queue (Linux TCP_INFO).")
        for sock in listeners:
            pending = pending_connections(sock)
            if pending is not None:
                out.append(f'pronghorn_listen_backlog{{listener="{escape(address(sock))}"}} '
                           f"{pending}")

        family(out, "pronghorn_worker_restarts_total", "counter",
               "Workers replaced, by reason.")
        for reason, count in self.restarts.items():
            out.append(f'pronghorn_worker_restarts_total{{reason="{reason}"}} {count}')

        # A worker that has exited but is not yet reaped (the master's SIGCHLD turn is next) still
        # counts its requests above, but is no longer alive: where /proc tells, it is left out here.
        resident = [(pid, resident_bytes(pid)) for pid, _ in workers]
        if HAVE_PROC:
            resident = [(pid, rss) for pid, rss in resident if rss is not None]
        family(out, "pronghorn_workers", "gauge", "Worker processes alive.")
        out.append(f"pronghorn_workers {len(resident)}")
        family(out, "pronghorn_worker_resident_memory_bytes", "gauge",
               "Each worker's resident memory (RSS, from /proc).")
        for pid, rss in resident:
            if rss is not None:
                out.append(f'pronghorn_worker_resident_memory_bytes{{pid="{pid}"}} {rss}')
        out.append("")
        return "\n".join(out)


def family(out: list[str], name: str, kind: str, text: str) -> None:
    out.append(f"# HELP {name} {text}")
    out.append(f"# TYPE {name} {kind}")


def escape(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def address(sock: socket.socket) -> str:
    try:
        name = sock.getsockname()
    except OSError:
        return "?"
    if sock.family == socket.AF_INET6:
        return f"[{name[0]}]:{name[1]}"
    if sock.family == socket.AF_INET:
        return f"{name[0]}:{name[1]}"
    return str(name)

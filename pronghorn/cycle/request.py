"""One request's life, the same under every worker class: environ, hooks, the app, framing, error page,
access log, statsd, post_request.

The driver (a worker class) makes a ``Job`` for a complete request and calls ``RequestCycle.run``
from wherever its app calls happen (inline on the loop, a pool thread, a greenlet). ``run`` returns
None when the response is complete, or a generator for a body that is streamed: the driver runs it
to its end, waiting as each yielded ``Wait`` asks (see the package's docstring).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from time import perf_counter
from typing import Any, Callable, Final, Generator, Iterable, Iterator, Protocol, cast

from .. import SERVER_SOFTWARE
from ..config import Config
from ..http import (HeadCache, HTTPError, Limits, Request, ResponseFramer, ResponseHeadCache,
                    error_response)
from ..http.cache import BoundedCache
from ..http.events import Fields
from ..http.uwsgi import PacketCache
from ..logs import custom_logger, request_logger
from ..trust import matcher
from ..wsgi.environ import EnvironBuilder
from ..wsgi.errors_stream import ErrorStream
from ..wsgi.exchange import Exchange
from ..wsgi.file_wrapper import FileWrapper
from ..wsgi.forwarded import ForwardedPolicy
from .clock import DateCache
from .counters import (BUCKETS, BYTES_IN, BYTES_OUT, ENDED, FIRST_BOUND, OTHER_ROW, ROWS, SECONDS,
                       STARTED, RequestCounters, bucket)
from .hook_objects import HookRequest, HookResponse
from .takeover import TakenChannel

SERVER: Final = SERVER_SOFTWARE.encode()


class Wait:
    """What a streamed response waits for before it goes on (yielded by the cycle's generator)."""

    __slots__ = ("what", "fd")

    def __init__(self, what: str, fd: int = -1) -> None:
        self.what = what
        self.fd = fd

    def __repr__(self) -> str:
        return f"Wait({self.what!r}, {self.fd})"


#: The connection's buffered output to fall below its low-water mark (the client reads again).
DRAIN = Wait("drain")
#: The connection's buffered output to be all sent (before sendfile writes past the buffer).
EMPTY = Wait("empty")


def writable(fd: int) -> Wait:
    """A descriptor to become writable (sendfile's duplicate of the socket)."""
    return Wait("writable", fd)


Stream = Generator[Wait, None, None]


class Channel(Protocol):
    """What the request cycle asks of a connection; each worker class implements it once."""

    @property
    def body_error(self) -> HTTPError | None:
        """The 4xx a body the app asked for late turned out to deserve (Expect: 100-continue)."""

    def write(self, data: bytes) -> None:
        """Bytes of the response, in order (the driver may hand them over later, never reorder)."""

    def complete(self, data: bytes, keep_alive: bool) -> None:
        """The response's last bytes: the connection may carry the next request, or closes."""

    def backlogged(self) -> bool:
        """Whether a streamed body must wait (yield DRAIN) before its next piece."""

    def gone(self) -> bool:
        """Whether no more bytes can reach the client."""

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        """An error page instead of the response (nothing of it is sent yet), then close."""

    def abort(self) -> None:
        """Cut the connection: a response under way cannot be finished."""

    def gather(self) -> "Gathering | None":
        """For a streamed body: a Gathering if the channel may hold the pieces written between two
        of the app's (it then writes them together, see Gathering), else None (each is written
        at once)."""

    def can_sendfile(self) -> bool:
        """Whether sendfile can put a file on this connection's wire (not through TLS)."""

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
        """A generator putting count bytes of the file on the wire, returning how many went."""

    @property
    def client_socket(self) -> Any:
        """The connection's ``environ["gunicorn.socket"]`` (cycle.takeover.client_socket)."""


class Gathering(Protocol):
    """A channel holding a streamed body's pieces to write several at once. PEP 3333 forbids
    delaying a piece while the app makes the next: the cycle says when the app runs, and the
    channel sees that what it holds goes out meanwhile (workers/held_output.py)."""

    def app_runs(self) -> None:
        """The cycle is about to ask the app's iterable for its next piece."""

    def app_returned(self) -> None:
        """The app's iterable returned (or raised)."""

    def done(self) -> None:
        """The stream is over: anything still held (it ended early) goes out as it would have."""


class WorkerIdentity(Protocol):
    """The part of the worker (``workers.base.WorkerContext``, the ``worker`` hooks receive) that
    the cycle uses."""

    hooks: Any
    describe_current: Callable[[], str]


class Job:
    """One request on its way through the cycle."""

    __slots__ = ("request", "body", "channel", "builder", "peer", "trailers", "exchange", "environ",
                 "started", "policy", "hook_req")

    hook_req: HookRequest  # the ``req`` of hooks, once made (unset until then: hook_request)

    def __init__(self, request: Request, body: Any, channel: Channel, builder: EnvironBuilder,
                 peer: Any, trailers: Fields = (), policy: Any = None) -> None:
        self.request = request
        self.body = body
        self.channel = channel
        self.builder = builder
        self.peer = peer  # the client's address (a PROXY header's or a unix socket's None)
        self.trailers = trailers  # a chunked body's trailer fields, when it came before the app
        self.exchange: Exchange | None = None
        self.environ: dict[str, Any] | None = None
        self.started = 0.0
        # The connection's policy (cycle/connection.py), read only for the ``req`` of hooks and
        # custom loggers.
        self.policy = policy

    def describe(self) -> str:
        request = self.request
        return (f"{request.method} {request.target[:200].decode('latin-1')} "
                f"from {self.peer}")


def limits_from(cfg: Config) -> Limits:
    """The HTTP core's limits from Gunicorn's --limit-request-* settings (and ours), and the
    parsing leniencies it applies (strip_header_spaces is not one: see cli.unapplied_leniencies)."""
    return Limits(
        request_line=cfg.limit_request_line, request_fields=cfg.limit_request_fields,
        request_field_size=cfg.limit_request_field_size, request_body=cfg.limit_request_body,
        permit_obsolete_folding=cfg.permit_obsolete_folding,
        permit_unconventional_method=cfg.permit_unconventional_http_method,
        permit_unconventional_version=cfg.permit_unconventional_http_version,
        casefold_method=cfg.casefold_http_method,
    ).normalized()


# The iterators of list and tuple: a body behind one is in memory already.
_SEQUENCE_ITERATORS: tuple[type, ...] = (type(iter([])), type(iter(())))


def body_pieces(result: Any) -> "list[bytes] | tuple[bytes, ...] | Iterator[bytes]":
    """The app's response iterable as the server writes it: a list or tuple as it is; an iterator
    over one drained into a list, since its pieces are all in memory already (Django's HttpResponse
    iterates over its list of content), so it goes out whole, in one write, like a list; anything
    else as its iterator, to be streamed piece by piece. Raises what the app's __iter__ raises."""
    if type(result) is list or type(result) is tuple:
        return result
    pieces: Iterator[bytes] = iter(result)
    if type(pieces) in _SEQUENCE_ITERATORS:
        return list(pieces)
    return pieces


def close_iterable(result: Any, log: logging.Logger) -> None:
    """PEP 3333: the server calls the response iterable's close(), whatever happened."""
    close = getattr(result, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("Error closing the response iterable")


#: The HTTP version uwsgi responses are framed for: never chunked (nginx would pass the chunk
#: markers through as body); a response without a length ends with the connection.
UWSGI_FRAMING: Final = (1, 0)
#: The bound of a worker's uwsgi packet cache (the HTTP head cache's default).
PACKET_CACHE_BYTES = 1024 * 1024


class UWSGIRules:
    """--protocol uwsgi: every connection speaks nginx's uwsgi_pass (http/uwsgi.py), from the
    peers of --uwsgi-allow-from only (a unix socket's always, as in Gunicorn)."""

    def __init__(self, allow_from: str) -> None:
        self._allowed = matcher(allow_from)
        # The worker's validated packets (http/uwsgi.py's packet_key), for its connections.
        self.packets: PacketCache = BoundedCache(PACKET_CACHE_BYTES)

    def allowed(self, peer: Any) -> bool:
        return not isinstance(peer, tuple) or self._allowed(peer)


def received(request: Request, body: Any) -> int:
    """The request body's length, for the metrics: its Content-Length, or what a chunked one held."""
    length = request.content_length
    if length is not None:
        return length
    size = getattr(body, "size", 0)  # (a BodyBuffer; a body the app never asked for counts 0)
    return size if type(size) is int else 0


class RequestCycle:
    """Everything one worker's requests share, and the cycle itself. Made once per worker."""

    def __init__(self, app: Callable[..., Any], cfg: Config, ctx: WorkerIdentity,
                 log: logging.Logger, multithread: bool) -> None:
        self.app = app
        self.cfg = cfg
        self.ctx = ctx
        self.log = log
        self.hooks = ctx.hooks
        self.multithread = multithread
        # Per-request hooks cost a call and two objects per request: skipped when unset.
        self.pre_request_hook = self.hooks.has("pre_request")
        self.post_request_hook = self.hooks.has("post_request")
        # The access log and statsd (None when both are off: then a request pays one None check).
        self.request_log = request_logger()
        # --logger-class: the Gunicorn-style logger object whose access() sees every request.
        self.custom_log: Any = custom_logger()
        # Whether anything runs after a response (else a request skips finish()), and whether a
        # request's start time is read (the access log's duration, gthread's stuck-thread check).
        self.hooked = (self.pre_request_hook or self.post_request_hook
                       or self.custom_log is not None)
        self.after_request = self.request_log is not None or self.hooked
        # The access log's line for a finished request (a bound method: cheaper to call than the
        # logger object itself).
        self.log_request = self.request_log.log if self.request_log is not None else None
        # Whether requests are timed: gthread's stuck-thread check, a custom logger's
        # request_time, and an access log or statsd that uses the duration (the default format
        # does not: its requests skip two clock reads).
        self.timed = (multithread or self.custom_log is not None
                      or (self.request_log is not None and self.request_log.wants_duration()))
        # --metrics-bind: the worker's counters in memory shared with the master (counters.py);
        # None otherwise, and then a request pays nothing for them. With them, every request is
        # timed and goes through finish(), where it is counted.
        self.counters: RequestCounters | None = getattr(ctx, "counters", None)
        self.count_slots = self.counters.slots if self.counters is not None else None
        if self.counters is not None:
            self.timed = self.after_request = True
        # When the access line (or statsd) is all that follows a response, and untimed: run()
        # logs it itself.
        self.quick_log = (self.log_request
                          if not (self.hooked or self.timed or self.counters) else None)
        self.limits = limits_from(cfg)
        # The worker's caches of what clients sent and apps answered, each bounded in bytes and
        # holding only validated results (docs/http.md, "What a worker remembers").
        self.head_cache = HeadCache(self.limits)
        self.response_heads = ResponseHeadCache()
        self.dates = DateCache()
        self.errors = ErrorStream(log)
        self.forwarded = ForwardedPolicy(
            cfg.forwarded_allow_ips, cfg.secure_scheme_headers, cfg.forwarded_client_address,
            cfg.forwarder_headers, cfg.header_map)
        # --proxy-protocol: the mode, and which peers may send the header (None: off).
        self.proxy_mode: str | None = None if cfg.proxy_protocol == "off" else cfg.proxy_protocol
        self.proxy_allowed = matcher(cfg.proxy_allow_ips)
        # --protocol uwsgi (None: http). One attribute: past 30, CPython stops sharing the
        # instance dict's keys, and every attribute read on the request path gets slower.
        self.uwsgi = UWSGIRules(cfg.uwsgi_allow_ips) if cfg.protocol == "uwsgi" else None
        self.closing = False  # TERM: responses from now on say "Connection: close"
        # --no-sendfile: a wsgi.file_wrapper body is read and written like any other iterable.
        self.sendfile = cfg.sendfile
        # tmp_upload_dir: where bodies past the spool limit wait (None: the system's default).
        self.spool_dir = cfg.tmp_upload_dir
        # The requests the app is on, as the driver knows them (its connections' current jobs):
        # a TERM makes the ones whose head is not out yet the connection's last, and the master's
        # abort names them. Asked only then, so a request pays nothing to be listed.
        self.in_flight: Callable[[], Iterable[Job]] = tuple
        ctx.describe_current = self.describe_in_flight

    def builder(self, server_address: Any, tls: bool) -> EnvironBuilder:
        """The environ maker for one listener."""
        # (A uwsgi request's scheme is its HTTPS var's, and no header is believed over it, as in
        # Gunicorn: no forwarded policy.)
        return EnvironBuilder(server_address, "https" if tls else "http", self.errors,
                              self.cfg.workers > 1, self.multithread,
                              None if self.uwsgi is not None else self.forwarded)

    def error_page(self, status: int, reason: str) -> bytes:
        return error_response(status, reason, self.dates.get(), SERVER)

    # -- the cycle ------------------------------------------------------------------------------------

    def run(self, job: Job) -> Stream | None:
        """Call the app for job's request and write its response. None once the response is
        complete (or refused); a generator for the rest of a streamed body."""
        request = job.request
        channel = job.channel
        if self.timed:
            job.started = perf_counter()
            count_slots = self.count_slots
            if count_slots is not None:
                count_slots[STARTED] += 1
        try:
            environ = job.builder.build(request, job.body, job.peer, job.trailers)
        except HTTPError as exc:  # what a trusted proxy said does not add up, or a refused header
            channel.refuse(exc.status, exc.reason)
            self.count_refused(job, exc.status)
            return None
        framer = ResponseFramer(request.version if self.uwsgi is None else UWSGI_FRAMING,
                                request.keep_alive and not self.closing,
                                request.method == "HEAD", self.response_heads)
        exchange = Exchange(framer, channel.write, self.dates.get(), SERVER)
        job.exchange = exchange
        job.environ = environ
        # (The keys exist in the builder's base environ already: these stores do not grow the dict.)
        environ["gunicorn.socket"] = channel.client_socket
        environ["wsgi.early_hints"] = exchange
        result: Any = None
        try:
            if self.pre_request_hook:  # (a hook that raises makes the request a 500, as in Gunicorn)
                self.hooks.call_or_raise("pre_request", self.ctx, self.hook_request(job))
            result = self.app(environ, exchange.start_response)
            pieces = result if type(result) is list else body_pieces(result)
            if type(pieces) is list or type(pieces) is tuple:
                # The common case: the whole body is in memory; one write for head and body. (The
                # job's channel, not the one it began with: the app may have taken the connection
                # over, see cycle.takeover.)
                job.channel.complete(exchange.whole(pieces), framer.keep_alive)
                if type(result) is not list:  # (a plain list has no close())
                    close_iterable(result, self.log)
                if self.after_request:
                    quick_log = self.quick_log
                    if quick_log is not None:  # (finish() without the frame: only a line to log)
                        quick_log(request, environ, exchange, 0.0)
                    else:
                        self.finish(job)
                return None
        except StopIteration:
            # Gunicorn's way for an app to end the connection without a response (flask-sock
            # raises it once its websocket is over): close quietly.
            self.log.debug("Closing connection at the application's request (StopIteration)")
            job.channel.abort()
            if self.counters is not None:
                self.counters.unanswered()
            if self.post_request_hook:  # no access line, but post_request runs: Gunicorn's order
                self._after_hooks(job, logged=False)
            return None
        except Exception as exc:
            if not (isinstance(job.channel, TakenChannel) and exchange.status is None
                    and isinstance(exc, HTTPError)):
                # (An app that took the connection over owes no response: it just ends.)
                self.log.exception("Error handling request %s", request.target.decode("latin-1"))
            self.fail(job)
            if result is not None:
                close_iterable(result, self.log)
            self.finish(job)
            return None
        return self._stream(job, result, cast(Iterator[bytes], pieces))  # (not a sequence here)

    def _stream(self, job: Job, result: Any, pieces: Iterator[bytes]) -> Stream:
        """A body the app yields piece by piece (a generator; Flask's and Django's streaming
        responses), or a file: each piece is written as it comes, and the client's pace is awaited
        wherever the connection pushes back, so a slow reader never makes the worker hold an
        unbounded response."""
        exchange = job.exchange
        assert exchange is not None
        channel = job.channel  # (after the app's call: a connection it took over is a TakenChannel)
        framer = exchange.framer
        try:
            where = (result.sendfile_range()
                     if self.sendfile and isinstance(result, FileWrapper) and not exchange.head_sent
                     else None)
            if where is not None and channel.can_sendfile():
                fd, offset, count = where
                channel.write(exchange.head_bytes(count))
                allowed = framer.reserve(count)  # (the app's Content-Length may say less)
                if allowed:
                    sent = yield from channel.sendfile(fd, offset, allowed)
                    if sent < allowed:
                        channel.abort()  # the file shrank: the framing promised bytes we lack
                        return
                if not channel.gone():
                    channel.complete(framer.end(), framer.keep_alive)
                return
            gathering = channel.gather()
            if gathering is None:
                for piece in pieces:
                    if not exchange.write_piece(piece):
                        continue
                    if channel.gone():
                        return
                    if channel.backlogged():
                        yield DRAIN
                        if channel.gone():
                            return
            else:
                # The same loop, the app's turns marked: the channel holds what the cycle writes
                # between them (one system call for many pieces) and sends it while the app runs.
                try:
                    while True:
                        gathering.app_runs()
                        ended = False  # (not a break in the try: mypyc cannot compile one)
                        try:
                            piece = next(pieces)
                        except StopIteration:
                            ended = True
                        finally:
                            gathering.app_returned()
                        if ended:
                            break
                        if not exchange.write_piece(piece):
                            continue
                        if channel.gone():
                            return
                        if channel.backlogged():
                            yield DRAIN
                            if channel.gone():
                                return
                    if not channel.gone():
                        tail = b"" if exchange.head_sent else exchange.head_bytes()
                        channel.complete(tail + framer.end(), framer.keep_alive)
                    return
                finally:
                    gathering.done()
            if not channel.gone():
                tail = b"" if exchange.head_sent else exchange.head_bytes()
                channel.complete(tail + framer.end(), framer.keep_alive)
        except Exception:
            self.log.exception("Error handling request %s", job.request.target.decode("latin-1"))
            self.fail(job)
        finally:
            close_iterable(result, self.log)
            self.finish(job)

    def fail(self, job: Job) -> None:
        """The app raised: a 500 if nothing was sent yet, else cut the connection. If it raised
        because a body it asked for late was malformed, the client gets that body's 4xx."""
        channel = job.channel
        exchange = job.exchange
        if exchange is not None and exchange.head_sent:
            channel.abort()
            return
        error = channel.body_error
        if error is not None:
            channel.refuse(error.status, error.reason)
        else:
            channel.refuse(500, "the application raised an error", log=False)

    def finish(self, job: Job) -> None:
        """After the response: the access log line (before post_request, as Gunicorn logs it) and
        the post_request hook."""
        exchange = job.exchange
        if exchange is None or job.environ is None:
            return
        log_request = self.log_request
        counters = self.counters
        # One clock read for the access log and the metrics both.
        seconds = (perf_counter() - job.started
                   if self.timed and (log_request is not None or counters is not None) else 0.0)
        if log_request is not None:
            log_request(job.request, job.environ, exchange, seconds)
        if counters is not None:
            # RequestCounters.answered, inline: a call is a measurable part of a small request's
            # cost. As the access log has it: no head from the framer means the client got our 500.
            request = job.request
            framer = exchange.framer
            counts = counters.counts
            counts[ROWS.get(request.method, OTHER_ROW)
                   + (framer.status_code if exchange.head_sent else 500) // 100] += 1
            counts[BUCKETS if seconds <= FIRST_BOUND else bucket(seconds)] += 1
            counts[SECONDS] += seconds
            length = request.content_length  # (0 without a body; None when chunked)
            if length is None:
                length = received(request, job.body)
            if length:
                counts[BYTES_IN] += length
            sent = framer.sent
            if sent:
                counts[BYTES_OUT] += sent
            counters.slots[ENDED] += 1
        if self.hooked:
            self._after_hooks(job)

    def count_started(self) -> None:
        """For a cycle of its own (ASGI) that times its requests: one more request in flight."""
        if self.counters is not None:
            self.counters.started()

    def count_refused(self, job: Job, status: int) -> None:
        """A request answered with an error page before the app saw it (no finish() follows)."""
        if self.counters is not None:
            self.counters.answered(job.request.method, status, perf_counter() - job.started,
                                   received(job.request, job.body), 0)

    def count_unanswered(self) -> None:
        """A request that ended without finish() and without a response (a cancelled task)."""
        if self.counters is not None:
            self.counters.unanswered()

    def hook_request(self, job: Job) -> HookRequest:
        """The ``req`` of pre_request, a custom logger's access() and post_request: one object per
        request, made on first need (a server without those hooks never makes one)."""
        try:
            req: HookRequest = job.hook_req
        except AttributeError:  # (unset slot: the first ask; a request without hooks never asks)
            req = job.hook_req = HookRequest(job, self.closing)
        return req

    def _after_hooks(self, job: Job, logged: bool = True) -> None:
        """A custom logger's access(resp, req, environ, request_time) (unless not ``logged``), then
        post_request, as Gunicorn calls them (the access line first)."""
        environ = job.environ
        req = self.hook_request(job)
        resp = HookResponse(job, req)
        custom = self.custom_log
        if custom is not None and logged:
            try:
                custom.access(resp, req, environ, timedelta(seconds=perf_counter() - job.started))
            except Exception:
                self.log.exception("Error in the logger class's access()")
        if self.post_request_hook:
            self.hooks.call("post_request", self.ctx, req, environ, resp)
        if job.policy is not None:
            job.policy.served += 1  # (read as req_number by the connection's next req)

    # -- stopping ---------------------------------------------------------------------------------------

    def close_after_current(self) -> None:
        """TERM: the responses whose head is not written yet say "Connection: close". Safe from a
        signal handler: it only flips flags. Once written, a promised keep-alive is kept."""
        self.closing = True
        for job in list(self.in_flight()):
            exchange = job.exchange
            if exchange is not None and not exchange.framer.status_code:
                exchange.framer.keep_alive = False

    def describe_in_flight(self) -> str:
        """The requests in hand, for the log when the master aborts us for silence."""
        return "; ".join(job.describe() for job in list(self.in_flight()))

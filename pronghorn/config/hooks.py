"""Server hooks: Gunicorn's names and argument lists, so a Gunicorn config file's hooks run unchanged.

A hook is a plain callable set in the config file (``def post_fork(server, worker): ...``). The master
and the workers call them through :class:`Hooks`:

- ``hooks.has(name)`` says whether a hook is set, so a hot path (``pre_request``, ``post_request``)
  costs one dictionary lookup when it is not;
- ``hooks.call(name, *args)`` calls it and returns what it returned. A hook that raises is logged
  with its traceback to the ``pronghorn.error`` logger as "Exception in <name> hook" and ``call``
  returns None. ``SystemExit`` and ``KeyboardInterrupt`` are not caught: a hook that calls
  ``sys.exit()`` means it.
- ``hooks.call_or_raise(name, *args)`` lets the exception through, for the hooks whose failure
  Gunicorn does not survive either: ``on_starting`` and ``when_ready`` stop the master,
  ``post_fork`` and ``post_worker_init`` fail the worker's boot (and so stop the master, as an app
  that fails to import does), ``pre_request`` makes the request a 500 without calling the app.

Hooks are checked when the config file is loaded (:func:`validate_hook`): each must be callable and
accept the documented positional arguments, so a wrong signature is a start-up error rather than a
TypeError logged on every request.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Iterator, Mapping

#: Every hook pronghorn calls, with the arguments it passes (Gunicorn's names and order).
HOOK_SPECS: dict[str, tuple[str, ...]] = {
    "on_starting": ("server",),
    "on_reload": ("server",),
    "when_ready": ("server",),
    "pre_fork": ("server", "worker"),
    "post_fork": ("server", "worker"),
    "post_worker_init": ("worker",),
    "worker_int": ("worker",),
    "worker_abort": ("worker",),
    "pre_exec": ("server",),
    "pre_request": ("worker", "req"),
    "post_request": ("worker", "req", "environ", "resp"),
    "child_exit": ("server", "worker"),
    "worker_exit": ("server", "worker"),
    "nworkers_changed": ("server", "new_value", "old_value"),
    "on_exit": ("server",),
    "ssl_context": ("config", "default_ssl_context_factory"),
}

HOOK_NAMES: frozenset[str] = frozenset(HOOK_SPECS)

_LOGGER_NAME = "pronghorn.error"


def validate_hook(name: str, hook: object) -> Callable[..., Any]:
    """Return ``hook`` if it can be called with ``name``'s arguments; raise ValueError saying why not.

    A hook may take more parameters than it is given if they have defaults, and ``*args`` accepts
    any number. Callables whose signature Python cannot read (some builtins) are accepted.
    """
    expected = HOOK_SPECS[name]
    wanted = f"{len(expected)} positional argument{'s' if len(expected) != 1 else ''} " \
             f"({', '.join(expected)})"
    if not callable(hook):
        raise ValueError(f"{name}: a hook must be callable taking {wanted}, "
                         f"not {type(hook).__name__} {hook!r}")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):
        return hook
    try:
        signature.bind(*expected)
    except TypeError:
        raise ValueError(f"{name}: the hook must accept {wanted}; it is defined as "
                         f"{name}{signature}") from None
    return hook


class Hooks:
    """The hooks set in the config file; ``call`` never lets a hook's exception escape."""

    __slots__ = ("_hooks", "_log")

    def __init__(self, hooks: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._log = logging.getLogger(_LOGGER_NAME)
        for name, hook in (hooks or {}).items():
            if name not in HOOK_SPECS:
                raise ValueError(f"{name!r} is not a server hook")
            if hook is not None:
                self._hooks[name] = validate_hook(name, hook)

    def has(self, name: str) -> bool:
        if name not in HOOK_SPECS:
            raise KeyError(f"{name!r} is not a server hook")
        return name in self._hooks

    def get(self, name: str) -> Callable[..., Any] | None:
        if name not in HOOK_SPECS:
            raise KeyError(f"{name!r} is not a server hook")
        return self._hooks.get(name)

    def set(self, name: str, hook: Callable[..., Any] | None) -> None:
        """Set (or, with None, unset) hook ``name``: Gunicorn's ``cfg.set("post_fork", fn)``.
        A hook checked by the worker's hot path (pre_request, post_request) is read there once, at
        its start: one set later applies to workers forked after it."""
        if name not in HOOK_SPECS:
            raise KeyError(f"{name!r} is not a server hook")
        if hook is None:
            self._hooks.pop(name, None)
        else:
            self._hooks[name] = validate_hook(name, hook)

    def call(self, name: str, *args: Any) -> Any:
        """Call hook ``name`` if it is set and return its result; None if unset or if it raised."""
        hook = self.get(name)
        if hook is None:
            return None
        try:
            return hook(*args)
        except Exception:
            self._log.exception("Exception in %s hook", name)
            return None

    def call_or_raise(self, name: str, *args: Any) -> Any:
        """Call hook ``name`` if it is set and return its result; what it raises goes through."""
        hook = self.get(name)
        return None if hook is None else hook(*args)

    def names(self) -> Iterator[str]:
        """The names of the hooks that are set, in HOOK_SPECS order."""
        return (name for name in HOOK_SPECS if name in self._hooks)

    def __repr__(self) -> str:
        return f"Hooks({', '.join(self.names())})"

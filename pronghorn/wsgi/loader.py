"""Find the WSGI application named on the command line: ``module``, ``module:name``,
``module:factory()`` or ``module:factory('arg', key=1)``."""

from __future__ import annotations

import ast
import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, Callable, cast

if TYPE_CHECKING:
    from ..config import Config


class AppLoadError(Exception):
    """The application could not be found or imported (the message says which and why)."""


def ensure_path(cwd: str | None = None) -> None:
    """The current directory is on sys.path, as Gunicorn has it (PYTHONPATH is already honoured by
    Python itself)."""
    here = cwd or os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def load_app(spec: str) -> Callable[..., Any]:
    module_name, _, expression = spec.partition(":")
    expression = expression.strip() or "application"
    if not module_name:
        raise AppLoadError(f"no module in the application spec {spec!r}; expected MODULE:CALLABLE")
    ensure_path()
    # Import errors propagate with their traceback: the user needs to see the line that failed.
    module = importlib.import_module(module_name)
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppLoadError(f"{expression!r} is not a name or a call in {spec!r}") from None
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise AppLoadError(f"{expression!r}: only a plain factory name may be called")
        try:
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
        except ValueError:
            raise AppLoadError(f"{expression!r}: factory arguments must be literals") from None
        factory = _attribute(module, module_name, node.func.id)
        app = factory(*args, **kwargs)
    elif isinstance(node, ast.Name):
        app = _attribute(module, module_name, node.id)
    else:
        raise AppLoadError(f"{expression!r} is not a name or a call in {spec!r}")
    if app is None or not callable(app):
        raise AppLoadError(f"{spec!r} is not a callable WSGI application (got {type(app).__name__})")
    return cast("Callable[..., Any]", app)


def _attribute(module: Any, module_name: str, name: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError:
        raise AppLoadError(f"module {module_name!r} has no attribute {name!r}") from None


# -- PasteDeploy (--paste) ------------------------------------------------------------------------------

PASTE_MISSING = ("--paste needs PasteDeploy, which is not installed: pip install PasteDeploy "
                 "(in the environment pronghorn runs in)")


def paste_file(config_uri: str) -> str:
    """The ini file of a --paste value (``PATH`` or ``PATH#app_name``)."""
    return config_uri.split("#", 1)[0]


def paste_has_logging(path: str) -> bool:
    """Whether the ini file configures logging (a [loggers] section), which Gunicorn then applies."""
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read([path])
    except configparser.Error:
        return False  # PasteDeploy will say what is wrong with the file when it loads the app
    return parser.has_section("loggers")


def load_paste_app(config_uri: str, global_conf: dict[str, str] | None = None) -> Callable[..., Any]:
    """The app of a PasteDeploy ini file, as Gunicorn loads it: ``paste.deploy.loadapp`` with the
    --paste-global values as the global configuration, relative paths from the current directory."""
    try:
        from paste.deploy import loadapp  # the user's dependency: imported only when asked for
    except ImportError:
        raise AppLoadError(PASTE_MISSING) from None
    ensure_path()  # "use = call:myapp:factory" imports from the current directory, as under Gunicorn
    uri = config_uri if ":" in config_uri else f"config:{config_uri}"
    app = loadapp(uri, relative_to=os.getcwd(), global_conf=global_conf)
    if not callable(app):
        raise AppLoadError(f"{config_uri!r} did not give a callable WSGI application")
    return cast("Callable[..., Any]", app)


def paste_global_conf(pairs: list[str]) -> dict[str, str]:
    """--paste-global KEY=VALUE items as the dict PasteDeploy takes (Gunicorn's paste_global_conf)."""
    return dict(pair.split("=", 1) for pair in pairs)


def app_from_config(cfg: Config) -> Callable[..., Any]:
    """The application the configuration names: the --paste ini file's, else MODULE:CALLABLE."""
    if cfg.paste:
        return load_paste_app(cfg.app_uri or cfg.paste, paste_global_conf(cfg.raw_paste_global_conf))
    return load_app(cfg.app_uri)


class Application:
    """``server.app`` and ``worker.app`` in hooks, shaped as Gunicorn's Application: ``cfg``,
    ``callable`` (the loaded WSGI callable, None until loaded), ``wsgi()`` (load it once, return
    it), ``load()``.

    The master makes one and never loads through it unless --preload (or a hook asks for
    ``server.app.wsgi()``): importing the app belongs in the workers.
    """

    def __init__(self, app_uri: str, cfg: Any, loader: Callable[[], Any] | None = None) -> None:
        self.app_uri = app_uri
        self.cfg = cfg
        self.callable: Any = None
        self.usage: str | None = None
        self.prog: str | None = getattr(cfg, "prog", None)
        self._loader = loader

    def load(self) -> Any:
        return self._loader() if self._loader is not None else load_app(self.app_uri)

    def wsgi(self) -> Any:
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def __repr__(self) -> str:
        return f"<Application {self.app_uri}>"

"""``pronghorn.app.wsgiapp``: Gunicorn's ``gunicorn.app.wsgiapp``, the application that the command
line describes (MODULE:CALLABLE, or --paste INI)."""

from __future__ import annotations

from typing import Any, Callable, NoReturn

from ..config import ConfigError
from .base import Application


class WSGIApplication(Application):
    """``WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()``: serve what the command line,
    the environment and the config file name, exactly as the ``pronghorn`` command does."""

    app_uri: str | None = None

    def init(self, parser: Any, opts: Any, args: list[str]) -> dict[str, Any] | None:
        return None

    def _needs_app_uri(self) -> bool:
        return True

    def load_config(self) -> None:
        super().load_config()
        self.app_uri = self.cfg.app_uri or None
        if self.app_uri is None:
            raise ConfigError("No application module specified.")

    def load_wsgiapp(self) -> Callable[..., Any]:
        from ..wsgi.loader import load_app

        return load_app(self.app_uri or "")

    def load_pasteapp(self) -> Callable[..., Any]:
        from ..wsgi.loader import load_paste_app

        return load_paste_app(self.cfg.paste, self.cfg.paste_global_conf)

    def load(self) -> Callable[..., Any]:
        if self.cfg.paste:
            return self.load_pasteapp()
        return self.load_wsgiapp()


def run(prog: str | None = None) -> NoReturn:
    """What the ``pronghorn`` command does, as Gunicorn's ``gunicorn.app.wsgiapp.run``."""
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog=prog).run()


if __name__ == "__main__":
    run()

"""PasteDeploy's server runner: ``use = egg:pronghorn#main`` in an ini file's ``[server:main]`` makes
``pserve app.ini`` serve the ini's app with pronghorn (the ``paste.server_runner`` entry point in
pyproject.toml), with Gunicorn's meaning of its options:

    [server:main]
    use = egg:pronghorn#main
    host = 127.0.0.1
    port = 8000
    workers = 2            # any setting, by its config-file name
    config = pronghorn.conf.py   # optional: a config file (else ./pronghorn.conf.py or ./gunicorn.conf.py)
"""

from __future__ import annotations

from typing import Any, Callable, NoReturn

from ..config.file import find_config_file
from .base import Application


def serve(app: Callable[..., Any], global_conf: dict[str, Any], **local_conf: Any) -> NoReturn:
    """Serve ``app`` (already loaded by PasteDeploy) until stopped, then exit with the status."""
    ini_file = global_conf["__file__"]
    config_file = local_conf.pop("config", None)
    host, port = local_conf.pop("host", ""), local_conf.pop("port", "")
    if host and port:
        local_conf["bind"] = f"{host}:{port}"
    elif host:
        local_conf["bind"] = host.split(",")

    class PasterServerApplication(Application):
        def load_config(self) -> None:
            from ..wsgi.loader import paste_has_logging

            # self.cfg holds the defaults here (load_default_config ran first). Process titles
            # name the ini, as Gunicorn's do (not a wsgi_app: PasteDeploy loaded the app).
            self.cfg.pronghorn_config.app_uri = ini_file
            if paste_has_logging(ini_file):
                self.cfg.set("logconfig", ini_file)
            default = config_file or find_config_file(None)
            if default is not None:
                self.load_config_from_file(default)
            for key, value in local_conf.items():
                if value is not None:
                    self.cfg.set(key.lower(), value)

        def load(self) -> Callable[..., Any]:
            return app

    PasterServerApplication().run()

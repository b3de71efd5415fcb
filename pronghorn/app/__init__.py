"""Running pronghorn from Python, with Gunicorn's embedding API (``gunicorn.app``): subclass
:class:`pronghorn.app.base.BaseApplication`, set options in ``load_config`` with ``self.cfg.set``,
return the app from ``load`` and call ``run()``. See docs/embedding.md."""

"""A Django project as the seed deploys it (docs/deploying.md, "The Django project"), served
through its asgi.py: ``django-admin startproject proj`` in one directory, the host's ``settings``
in another, both on PYTHONPATH; with an async view, the admin (its tables migrated and a superuser
made) and a Django Channels consumer behind a ``ProtocolTypeRouter`` in ``proj/asgi.py``.

Used by tests/test_asgi_deploy.py; tests/test_deploying_guide.py writes the guide's own asgi.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HOST_SETTINGS = """\
from proj.settings import *  # noqa: F401,F403 (the project's defaults, then the host's)

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "proj.example.com"]
SECRET_KEY = "not-a-secret-but-long-enough-for-a-test-of-the-asgi-project"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
"""

URLS = """\
from django.contrib import admin
from django.http import HttpResponse
from django.urls import path


async def hello(request):
    client = request.META.get("REMOTE_ADDR")
    return HttpResponse(f"async hello {request.path} {request.scheme} {client}")

urlpatterns = [path("hello/", hello), path("admin/", admin.site.urls)]
"""

CONSUMERS = """\
from channels.generic.websocket import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send(text_data=f"hello {user.username or 'anonymous'}")

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            await self.send(text_data="echo: " + text_data)
        else:
            await self.send(bytes_data=bytes_data)
"""

# As Channels' tutorial writes it: Django's app first (it sets Django up), then the router.
ASGI = """\
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from proj.consumers import EchoConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": AllowedHostsOriginValidator(
        AuthMiddlewareStack(URLRouter([path("ws/echo/", EchoConsumer.as_asgi())]))),
})
"""

ADMIN_USER, ADMIN_PASSWORD = "admin", "a-long-test-password-7"


def django_admin() -> list[str]:
    script = Path(sys.executable).with_name("django-admin")
    return [str(script)] if script.exists() else [sys.executable, "-m", "django"]


def make_asgi_project(root: Path) -> tuple[Path, dict[str, str]]:
    """(the code directory, the environment to serve it with): migrated, with a superuser."""
    code, etc = root / "opt-proj", root / "etc-opt-proj"
    code.mkdir()
    etc.mkdir()
    subprocess.run([*django_admin(), "startproject", "proj", str(code)], check=True,
                   capture_output=True, timeout=120)
    (code / "proj" / "urls.py").write_text(URLS)
    (code / "proj" / "consumers.py").write_text(CONSUMERS)
    (code / "proj" / "asgi.py").write_text(ASGI)
    (etc / "settings.py").write_text(HOST_SETTINGS.format(db=str(root / "db.sqlite3")))
    env = {"PYTHONPATH": f"{etc}{os.pathsep}{code}", "DJANGO_SETTINGS_MODULE": "settings"}
    full = {**os.environ, **env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
    manage = [sys.executable, str(code / "manage.py")]
    for command in (["migrate", "--noinput"],
                    ["createsuperuser", "--noinput", "--username", ADMIN_USER,
                     "--email", "admin@example.com"]):
        subprocess.run([*manage, *command], check=True, capture_output=True, timeout=120,
                       env=full, cwd=code)
    return code, env

# nginx talks to the unix socket; the TCP port is for the health checker.
import os

SOCKET = os.path.join(os.getcwd(), "run", "app.sock")
os.makedirs(os.path.dirname(SOCKET), exist_ok=True)

bind = [
    f"unix:{SOCKET}",
    "127.0.0.1:" + os.getenv("HEALTH_PORT", "8001"),
]
umask = 0o007
pidfile = os.path.join(os.getcwd(), "run", "app.pid")
workers = 1

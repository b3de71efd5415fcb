# Server mechanics spelled out, as an operations team's reviewed config does.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
backlog = 64
workers = 1
worker_connections = 100
keepalive = 10
timeout = 45
graceful_timeout = 15

limit_request_line = 8190
limit_request_fields = 50
limit_request_field_size = 8190

reuse_port = True
sendfile = False
worker_tmp_dir = "/dev/shm"
proc_name = "tuned-app"
daemon = False
enable_stdio_inheritance = True
capture_output = False
errorlog = "-"
loglevel = "warning"

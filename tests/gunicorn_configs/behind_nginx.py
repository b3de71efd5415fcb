# nginx on the same host terminates TLS and proxies to Gunicorn on the loopback interface.
import os

bind = os.getenv("BIND", "127.0.0.1:8000")
workers = 1
forwarded_allow_ips = "127.0.0.1,::1"
secure_scheme_headers = {
    "X-FORWARDED-PROTOCOL": "ssl",
    "X-FORWARDED-PROTO": "https",
    "X-FORWARDED-SSL": "on",
}
accesslog = "-"
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

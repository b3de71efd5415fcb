# Logs go to the host's syslog (rsyslog forwards them); nothing is written to files.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1

syslog = True
syslog_addr = os.getenv("SYSLOG_ADDR", "udp://localhost:514")
syslog_prefix = "shop"
syslog_facility = "local0"
accesslog = "-"
disable_redirect_access_to_syslog = False

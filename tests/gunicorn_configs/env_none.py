# Every optional setting comes from the environment; none of those variables is set here, so
# each lookup gives None (meaning: not configured).
import os

bind = os.getenv("BIND", "127.0.0.1:8000")
workers = 1

errorlog = os.getenv("CFGTEST_UNSET_ERRORLOG")
accesslog = os.getenv("CFGTEST_UNSET_ACCESSLOG")
access_log_format = os.getenv("CFGTEST_UNSET_ACCESS_LOG_FORMAT")
statsd_host = os.getenv("CFGTEST_UNSET_STATSD_HOST")
statsd_prefix = os.getenv("CFGTEST_UNSET_STATSD_PREFIX")
dogstatsd_tags = os.getenv("CFGTEST_UNSET_DD_TAGS")
pidfile = os.getenv("CFGTEST_UNSET_PIDFILE")
proc_name = os.getenv("CFGTEST_UNSET_PROC_NAME")
user = os.getenv("CFGTEST_UNSET_USER")
group = os.getenv("CFGTEST_UNSET_GROUP")
worker_tmp_dir = os.getenv("CFGTEST_UNSET_WORKER_TMP_DIR")
tmp_upload_dir = os.getenv("CFGTEST_UNSET_TMP_UPLOAD_DIR")
logconfig = os.getenv("CFGTEST_UNSET_LOGCONFIG")
syslog_addr = os.getenv("CFGTEST_UNSET_SYSLOG_ADDR")
capture_output = os.getenv("CFGTEST_UNSET_CAPTURE_OUTPUT")
preload_app = os.getenv("CFGTEST_UNSET_PRELOAD")
raw_env = os.getenv("CFGTEST_UNSET_RAW_ENV")
certfile = os.getenv("CFGTEST_UNSET_CERTFILE")
keyfile = os.getenv("CFGTEST_UNSET_KEYFILE")
wsgi_app = os.getenv("CFGTEST_UNSET_WSGI_APP")
sendfile = os.getenv("CFGTEST_UNSET_SENDFILE")

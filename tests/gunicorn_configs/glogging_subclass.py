# Access log without the load balancer's health checks (a Logger subclass in the project).
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s "%(a)s"'
logger_class = "quiet_health_logger.HealthCheckFilterLogger"

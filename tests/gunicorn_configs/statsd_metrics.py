# Gunicorn with metrics sent to the node's StatsD/DogStatsD agent.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1

statsd_host = os.getenv("STATSD_HOST")  # host:port of the agent; unset: no metrics
statsd_prefix = os.getenv("STATSD_PREFIX", "shop.web")
dogstatsd_tags = os.getenv("DD_TAGS", "env:test,service:shop")

accesslog = "-"

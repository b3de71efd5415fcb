# Behind the platform's load balancer; the trusted proxies come from the environment, and when
# the variable is not set nobody is trusted.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1
forwarded_allow_ips = os.getenv("TRUSTED_PROXY_IPS_FOR_CFGTEST")
proxy_allow_ips = os.getenv("TRUSTED_PROXY_IPS_FOR_CFGTEST")

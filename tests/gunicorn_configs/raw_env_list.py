# Environment for the app, set by the server: fixed values plus any from $APP_EXTRA_ENV
# ("A=1,B=2"), as a Helm chart's values file feeds them.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1

EXTRA_ENV = os.getenv("APP_EXTRA_ENV", "")

raw_env = [
    "CFGTEST_MODE=production",
    "CFGTEST_URL=postgres://db/app?sslmode=require",  # '=' in the value
    "CFGTEST_EMPTY=",
] + [item.strip() for item in EXTRA_ENV.split(",") if item.strip()]

"""The master process: listeners, forking workers, signals."""

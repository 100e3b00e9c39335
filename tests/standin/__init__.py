"""Local stand-ins for outside services, served on loopback for process-level tests (workers, gunicorn)."""

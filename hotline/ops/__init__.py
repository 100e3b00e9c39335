"""Running the hotline: scheduled jobs (`jobs`), housekeeping (expiry, retention, erasure), and /healthz."""

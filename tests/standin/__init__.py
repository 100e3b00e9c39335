"""Stand-ins for process-level tests: a Twilio REST API, and the hotline's own processes."""

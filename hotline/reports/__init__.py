"""What residents tell us: the inbound SMS read once (`inbox`), a report's life (`intake`), the fan-out
of a report into the outbox (`fanout`), and the coordinators' log of reports (`logbook`)."""

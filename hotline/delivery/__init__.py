"""How alerts leave: the outbox dispatcher (`outbox`), status callbacks (`receipts`), retries (`retry`),
alert calls (`calls`), SMS segments (`segments`) and the carrier seam (`carrier/`: Twilio or the simulator)."""

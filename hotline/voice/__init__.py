"""The phone menu: its steps (`steps`, `menu`), reporting and listening by phone (`reporting`), and turning
what is said into TwiML (`spoken`)."""

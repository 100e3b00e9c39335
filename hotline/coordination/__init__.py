"""What coordinators do besides the web: SMS commands (`commands`), accounts and login (`accounts`),
announcements, and the daily digest."""

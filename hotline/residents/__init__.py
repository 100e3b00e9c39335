"""Who is on which street: streets (finding the street meant, editing them), members (joining, leaving,
opting out, coordinators managing them), CSV import."""

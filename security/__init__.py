"""The security service: users, passwords, access grants and signed tokens (port 3004)."""

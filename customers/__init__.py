"""The customers service: organizations and customers (port 3001)."""

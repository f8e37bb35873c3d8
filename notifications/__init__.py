"""The notifications service: the email worker (`python -m notifications worker`) and its API (3003)."""

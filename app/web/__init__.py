"""The static chat page served at `/` (see routes.py)."""

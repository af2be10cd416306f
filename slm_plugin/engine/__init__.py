"""The engine: runs migration jobs and records them."""

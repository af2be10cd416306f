"""Commands and client of version 1 of the SLM API."""

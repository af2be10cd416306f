"""Helpers shared by the SLM services."""

"""Synchronized live migration of Nova server groups between data centres."""

"""Scenarios: a cloud's sites, hosts, links and server groups, and what to migrate where."""

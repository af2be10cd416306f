"""Collectors: build the planners' Scenario from what a live cloud reports."""

"""Persistence of migration jobs, their members and their events (oslo.db)."""

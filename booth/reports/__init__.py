"""Coordinator reports: today's totals at the booth (indicators, charts); exports and central come later."""

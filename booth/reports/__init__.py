"""Coordinator reports: today's totals at the booth (indicators, charts), small-cell suppression and the
suppressed CSV export; the other exports and central come later."""

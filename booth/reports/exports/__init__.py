"""Suppressed exports of the coordinator reports (docs/ARCHITECTURE.md, "Small-cell suppression")."""

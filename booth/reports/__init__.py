"""Coordinator reports: today's totals at the booth (indicators, charts), small-cell suppression and the
suppressed exports (CSV, PDF, DHIS2, FHIR: booth/reports/exports/); the central dashboard comes later."""

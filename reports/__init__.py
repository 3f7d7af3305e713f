"""Renderers of results.json — terminal, Markdown, HTML, JUnit, the audit — and what they share (docs/reports.md)."""

"""Renderers of results.json: terminal (rich) now; Markdown, HTML and JUnit later."""

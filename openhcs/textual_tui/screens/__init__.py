"""Textual screens of the openhcs TUI, one per file."""

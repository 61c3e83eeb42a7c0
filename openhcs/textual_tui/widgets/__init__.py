"""Textual widgets of the openhcs TUI."""

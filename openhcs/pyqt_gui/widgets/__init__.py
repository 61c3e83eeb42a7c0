"""Qt widgets of the openhcs GUI."""

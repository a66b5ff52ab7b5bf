"""Rows: reading and writing JSON Lines, the row's fields, and where each row goes (output or rejects)."""

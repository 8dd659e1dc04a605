"""market: see DESIGN.md."""

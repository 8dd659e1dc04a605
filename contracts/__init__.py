"""contracts: see DESIGN.md."""

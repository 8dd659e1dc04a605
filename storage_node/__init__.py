"""storage_node: see DESIGN.md."""

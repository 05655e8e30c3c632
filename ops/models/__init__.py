"""models ops."""

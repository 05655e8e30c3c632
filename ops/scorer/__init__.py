"""scorer ops."""

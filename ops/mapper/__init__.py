"""mapper ops."""

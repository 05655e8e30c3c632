"""filter ops."""

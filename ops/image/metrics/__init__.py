"""image/metrics ops."""

"""deduplicator ops."""

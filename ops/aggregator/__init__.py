"""aggregator ops."""

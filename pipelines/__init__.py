"""Recipe running: config, datasets, executors, CLI."""

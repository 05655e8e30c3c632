"""imgdiff ops."""

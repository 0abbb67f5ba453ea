"""Developer scripts: `make ui` runs scripts/local_stack.py."""

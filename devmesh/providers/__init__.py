"""Built-in providers. Each is a self-contained package, registered by entry point."""

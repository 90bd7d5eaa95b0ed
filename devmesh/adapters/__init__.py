"""The adapter contract every provider implements, and the provider registry."""

"""Models and errors: the vocabulary every layer shares. No I/O."""

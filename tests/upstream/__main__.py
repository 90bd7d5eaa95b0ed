"""``python -m tests.upstream``: run the upstream process (see the package docstring)."""

from tests.upstream.server import main

if __name__ == "__main__":
    main()

"""Repeatable benchmarks (not collected by the test suite); see docs/performance.md."""

# The two commands of the README. Both set up what they need from uv.lock.
.PHONY: serve test check

serve:
	@bash scripts/serve

test:
	@bash scripts/test

# Lint and types only, without the test suite.
check:
	@bash scripts/test --check-only

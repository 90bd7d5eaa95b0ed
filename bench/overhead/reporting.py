"""The table, the headline line, and the targets they are held to."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.overhead.measuring import Bench, Result

# Issue 16's targets (issue 5's were 2 and 5 ms).
TARGET_REST_MS = 1.0
TARGET_MCP_MS = 2.0
TARGET_RPS_RATIO = 3.0


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def table(bench: Bench) -> list[str]:
    header = (
        f"{'backend':9} {'path':22} {'conc':>4} {'calls':>6} {'err':>4} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'+p50 ms':>8} {'+p99 ms':>8} {'calls/s':>8} {'gw CPU ms':>9} "
        f"{'client CPU':>10} {'up/call':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in bench.results:
        direct = bench.find(r.backend, "direct", r.concurrency)
        added = r.path != "direct" and direct is not None
        lines.append(
            f"{r.backend:9} {r.path:22} {r.concurrency:>4} {r.calls:>6} {r.errors:>4} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} "
            f"{_ms(r.p50_ms - direct.p50_ms) if added and direct else '-':>8} "
            f"{_ms(r.p99_ms - direct.p99_ms) if added and direct else '-':>8} "
            f"{r.rps:>8.1f} {_ms(r.gateway_cpu_s * 1000 / r.calls if r.calls else math.nan):>9} "
            f"{_ms(r.client_cpu_s * 1000 / r.calls if r.calls else math.nan):>10} "
            f"{r.upstream_requests / r.calls if r.calls else math.nan:>7.2f}"
        )
    return lines


@dataclass(frozen=True)
class Headline:
    rest_p50_ms: float
    mcp_p50_ms: float
    mcp_rps_c8: float
    fastmcp_rps_c8: float

    def misses(self) -> list[str]:
        missed = []
        if not self.rest_p50_ms <= TARGET_REST_MS:
            missed.append(f"REST adds {self.rest_p50_ms:.2f} ms at p50 (target ≤ {TARGET_REST_MS})")
        if not self.mcp_p50_ms <= TARGET_MCP_MS:
            missed.append(f"MCP adds {self.mcp_p50_ms:.2f} ms at p50 (target ≤ {TARGET_MCP_MS})")
        if not self.mcp_rps_c8 >= TARGET_RPS_RATIO * self.fastmcp_rps_c8:
            missed.append(
                f"MCP does {self.mcp_rps_c8:.1f} calls/s at c=8, "
                f"{self.mcp_rps_c8 / self.fastmcp_rps_c8:.2f}x FastMCP's {self.fastmcp_rps_c8:.1f} "
                f"(target ≥ {TARGET_RPS_RATIO:.0f}x)"
            )
        return missed

    def line(self) -> str:
        return (
            f"overhead rest_p50_ms={self.rest_p50_ms:.2f} mcp_p50_ms={self.mcp_p50_ms:.2f} "
            f"mcp_rps_c8={self.mcp_rps_c8:.1f} fastmcp_rps_c8={self.fastmcp_rps_c8:.1f}"
        )


def headline(bench: Bench) -> Headline:
    def get(path: str, concurrency: int) -> Result:
        found = bench.find("embedded", path, concurrency)
        if found is None:
            raise RuntimeError(f"no embedded {path} row at concurrency {concurrency}")
        return found

    direct = get("direct", 1)
    return Headline(
        rest_p50_ms=get("rest", 1).p50_ms - direct.p50_ms,
        mcp_p50_ms=get("mcp", 1).p50_ms - direct.p50_ms,
        mcp_rps_c8=get("mcp", 8).rps,
        fastmcp_rps_c8=get("fastmcp", 8).rps,
    )

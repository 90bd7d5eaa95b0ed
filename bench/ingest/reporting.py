"""The ingest table, the headline line, and the targets they are held to."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.ingest.cells import Cell

TARGET_ACCEPTED_PER_S = 1000.0
TARGET_FLOOR_RATIO = 0.5
TARGET_ACK_P99_MS = 50.0


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(cells: list[Cell]) -> list[str]:
    header = (
        f"{'backend':9} {'conc':>4} {'sent':>6} {'accepted':>8} {'refused':>7} "
        f"{'accepted/s':>10} {'handled/s':>9} {'ack p50':>8} {'ack p99':>8} {'lost':>5} "
        f"{'floor/s':>8} {'floor p99':>9} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for c in cells:
        s, floor = c.sending, c.floor
        lines.append(
            f"{c.backend:9} {c.concurrency:>4} {s.sent:>6} {s.accepted:>8} {s.refused:>7} "
            f"{_f(s.per_second):>10} {_f(c.handled_per_s):>9} {_f(s.p_ms(0.5), 2):>8} "
            f"{_f(s.p_ms(0.99), 2):>8} {c.lost:>5} "
            f"{_f(floor.per_second) if floor else '-':>8} "
            f"{_f(floor.p_ms(0.99), 2) if floor else '-':>9} {_f(c.ratio, 2):>6}"
        )
    lines.append("(ack in ms; ratio = accepted/s over the floor's at the same concurrency)")
    return lines


@dataclass(frozen=True)
class Headline:
    accepted_per_s: float
    handled_per_s: float
    ack_p99_ms: float
    floor_per_s: float
    lost: int

    def line(self) -> str:
        return (
            f"webhooks accepted_per_s={self.accepted_per_s:.1f} "
            f"handled_per_s={self.handled_per_s:.1f} ack_p99_ms={self.ack_p99_ms:.2f} "
            f"floor_per_s={self.floor_per_s:.1f} lost={self.lost}"
        )


def headline(cells: list[Cell], concurrency: int) -> Headline:
    cell = next((c for c in cells if (c.backend, c.concurrency) == ("embedded", concurrency)), None)
    if cell is None:
        raise RuntimeError(f"no embedded cell at concurrency {concurrency}")
    return Headline(
        accepted_per_s=cell.sending.per_second,
        handled_per_s=cell.handled_per_s,
        ack_p99_ms=cell.sending.p_ms(0.99),
        floor_per_s=cell.floor.per_second if cell.floor else math.nan,
        lost=sum(c.lost for c in cells),
    )


def misses(top: Headline) -> list[str]:
    missed = []
    if not top.accepted_per_s >= TARGET_ACCEPTED_PER_S:
        missed.append(
            f"{top.accepted_per_s:.0f} accepted/s on the embedded default "
            f"(target ≥ {TARGET_ACCEPTED_PER_S:.0f})"
        )
    if not top.accepted_per_s >= TARGET_FLOOR_RATIO * top.floor_per_s:
        missed.append(
            f"{top.accepted_per_s / top.floor_per_s:.0%} of the floor's {top.floor_per_s:.0f}/s "
            f"(target ≥ {TARGET_FLOOR_RATIO:.0%})"
        )
    if not top.ack_p99_ms < TARGET_ACK_P99_MS:
        missed.append(f"ack p99 {top.ack_p99_ms:.1f} ms (target < {TARGET_ACK_P99_MS:.0f})")
    if top.lost:
        missed.append(f"{top.lost} accepted deliveries not handled (target 0)")
    return missed

"""Structured logs: JSON lines (or console) with request-scoped context.

Request ids are bound with ``structlog.contextvars`` by the HTTP middleware, and
the current span's trace id is added to each line, so every line logged while
serving a request carries both.
"""

from __future__ import annotations

import logging
import sys

import structlog

from devmesh.config import LoggingSettings
from devmesh.observability.tracing import add_trace_ids

__all__ = ["configure_logging"]


def configure_logging(settings: LoggingSettings) -> None:
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # format_exc_info here too: uvicorn logs with exc_info, which would
            # otherwise render as "<traceback object at 0x…>".
            foreign_pre_chain=[
                *shared,
                structlog.stdlib.add_logger_name,
                structlog.processors.format_exc_info,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    # No line shows where it was logged from, or which thread or process logged it, so
    # none of that is looked up for each record (the logging HOWTO's "Optimization";
    # the caller's frame was most of a log line's cost, as structlog's stdlib logger
    # walks the stack to find it).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at info; only its problems matter.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    # uvicorn's access log duplicates our own request log line.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

"""Events: the outbox, the bus (a SQL table or Redis Streams), the worker and handlers."""

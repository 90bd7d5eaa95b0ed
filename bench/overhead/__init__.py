"""The pieces of the gateway-overhead benchmark (``bench/call_overhead.py``), one job each.

* ``processes``: Developer Mesh and the FastMCP peer, started and stopped;
* ``calls``: the calls measured (direct, REST, MCP);
* ``measuring``: phases of calls at a concurrency and their results;
* ``reporting``: the table, the headline and the targets;
* ``profiling``: py-spy of the service, summarised.
"""

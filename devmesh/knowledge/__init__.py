"""The knowledge layer: what Developer Mesh remembers of the builds it sees.

Contexts (build records, analyses, resolutions), build logs indexed for search,
and the failure analyser. It sits above the service layer: its handlers run on
the event bus and reach tools only through ``ToolService``.
"""

"""The sandbox web console: server-rendered pages for bank developers and the operator."""

"""mock_ibps: a stand-alone simulator of mainland China's IBPS for the fpslink sandbox.

It keeps mainland participants, CNY accounts on a double-entry ledger, +86 mobile proxies and
the IBPS half of the link's two-phase settlement. The gateway reaches it only over HTTP, so
nothing here imports from ``fpslink``.
"""

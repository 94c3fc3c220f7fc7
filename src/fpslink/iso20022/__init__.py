"""ISO 20022 messages at the gateway's edge: pacs.008 in, pacs.002 out (pyiso20022 models, xsdata)."""

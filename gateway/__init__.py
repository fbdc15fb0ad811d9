"""Ingest: the protocols telephony systems speak, turned into the pipeline's audio unit."""

"""The node-to-node protocol as sans-IO state machines: bytes in, events out."""

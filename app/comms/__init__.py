"""DLMS/COSEM communication: framing, sessions, heartbeats, pushes and COSEM helpers."""

"""HES Core DLMS meter fleet simulator: many gevent meters serving DLMS/COSEM over TCP."""

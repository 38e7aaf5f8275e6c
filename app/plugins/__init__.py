"""Plugin support: the hook specifications and the plugin manager."""

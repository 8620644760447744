"""A small OVSDB client (RFC 7047) and the bridge-port transactions the plugin needs."""

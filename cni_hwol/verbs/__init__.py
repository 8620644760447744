"""The CNI verbs, each a list of steps over the protocol, hw, linux and ovsdb layers."""

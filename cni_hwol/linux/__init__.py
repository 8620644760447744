"""Linux actions: network namespaces, links, addresses, routes, ethtool features."""

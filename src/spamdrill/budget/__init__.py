"""The timeout budget: each layer's worst case predicted from configs (sans-IO), and the
readers that take those configs from the real files."""

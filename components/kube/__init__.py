"""Cluster access shared by the Kubernetes platform: config, server-side apply, watch with a deadline,
and API errors turned into one-line errors."""

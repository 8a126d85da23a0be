"""Cluster serving runtimes: one module per kind, each rendering the objects that serve one version."""

"""Pipelines built from meshserve's steps (KFP and Hera), their compiled YAML, and the command line."""

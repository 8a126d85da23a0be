"""Reporters turn a result document into text, HTML, KFP metrics or a live progress line.
Nothing about output formats lives in the engine."""

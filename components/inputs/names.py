"""The name patterns every object name is checked against (always with `fullmatch`: `$` in `re.match`
accepts a trailing newline)."""

from __future__ import annotations

import re

# RFC 1123 label: a Kubernetes namespace, a Service, a model's name (and its route's)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

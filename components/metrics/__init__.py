"""Live metrics for a rollout's guard: one provider protocol (provider.py), Prometheus over its HTTP API
(prometheus.py), and the queries as templates, Istio's standard metrics by default (templates.py)."""

"""Autoscaling: HPA objects (CPU, external QPS) and Knative's KPA settings, and the registry."""

"""The local platform's live-traffic telemetry, named as Istio names it: the router logs every request's
upstream attempts over UDP to an exporter (exporter.py) that serves `istio_requests_total` and
`istio_request_duration_milliseconds` per version, and a local Prometheus scrapes it (local.py), so that the
guard's default queries read the local platform exactly as they read a mesh."""

"""Platforms that run the deploy, promote and rollback steps: the local one (processes + nginx) today;
the Kubernetes one (KServe InferenceService + mesh objects) implements the same operations."""

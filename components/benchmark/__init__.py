"""The load generator behind the benchmark step, split like vegeta: pacer, targets, protocol clients,
runner, histogram, result and reporters. It knows nothing of Kubernetes; per-request failures are
data in the result, never exceptions."""

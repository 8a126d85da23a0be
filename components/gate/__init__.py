"""The promotion gate: decides PROMOTE, ROLLBACK or INCONCLUSIVE from benchmark results, training
metrics and a policy, and explains every check. It reads benchmark results through their contract
(components/contracts), never through the benchmark's code."""

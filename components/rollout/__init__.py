"""The rules of a rollout, written once over a runtime, a router and a state store (flagger's controller)."""

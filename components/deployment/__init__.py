"""The deployment spec and the objects it renders to, for every runtime, router and autoscaler."""

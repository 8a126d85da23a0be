"""The Kubernetes platform: the shared rollout rules over a cluster's objects, one module a part.

- versions.py: the rollout's runtime, each version's objects applied and watched until ready;
- routes.py: the rollout's router, the model's routing objects as its cluster router renders them;
- state.py: each model's rollout record in a ConfigMap, under a lease;
- names.py: the labels and object names meshserve writes;
- render.py: a deployment spec as the objects an operator would write (also `meshserve render`);
- platform.py: KubernetesPlatform, the Platform protocol over those parts.
"""

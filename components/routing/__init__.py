"""Routing: one routing spec, the rollout's one router protocol, one module per mesh (as fluxcd/flagger pkg/router).

The local platform's router is nginx; the Kubernetes meshes (Istio, Alibaba ASM) render the same spec
into their own objects.
"""

"""Model serving: meshserve's KServe model classes and a model server bound to loopback.

Layered like kserve/python: the model (load / predict) is ours; the data plane (decode, infer,
encode) and the transports (REST v1/v2, gRPC v2) are KServe's own.
"""

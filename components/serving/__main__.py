"""`python -m components.serving MODEL_DIR --name NAME [--http-port N] [--grpc-port M] [--host H]`: one model server.

`python -m components.serving --mesh-runtime LABEL [--http-port N] [--grpc-port M]`: a runtime of the local model
mesh (components/serving/mesh_runtime.py), holding no model until the mesh places one on it.

The local platform starts versions this way (on 127.0.0.1); the model-server image's ServingRuntime
(manifests/runtimes) starts it on 0.0.0.0 in a pod. kserve is imported behind components.compat so
that it does not parse this command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.compat import import_kserve
from components.errors import MeshserveError


def main() -> None:
    """Parse the flags, load the model, serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m components.serving")
    parser.add_argument("model_dir", nargs="?", help="the model directory (not with --mesh-runtime)")
    parser.add_argument("--name", help="the model's name (with MODEL_DIR)")
    parser.add_argument("--mesh-runtime", metavar="LABEL", help="serve as a runtime of the local model mesh")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (in a pod: 0.0.0.0)")
    args = parser.parse_args()
    if bool(args.mesh_runtime) == bool(args.model_dir and args.name):
        parser.error("pass MODEL_DIR and --name (one model), or --mesh-runtime LABEL (a model mesh's runtime)")
    try:
        if args.mesh_runtime:
            import_kserve("components.serving.mesh_runtime").serve(args.mesh_runtime, args.http_port, args.grpc_port,
                                                                   args.host)
        else:
            import_kserve("components.serving.model_server").serve(Path(args.model_dir), args.name, args.http_port,
                                                                   args.grpc_port, args.host)
    except MeshserveError as exc:
        print(f"model server: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

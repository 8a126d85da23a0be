"""The `meshserve` command line: each step runnable by hand, plus `run` for the local pipeline.

Every failure a user can fix ends as one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from components.errors import MeshserveError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, like every other meshserve error."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _cmd_train(args: argparse.Namespace) -> None:
    from components.steps.train.core import run_train

    result = run_train(
        framework=args.framework, dataset=args.dataset, algorithm=args.algorithm or "", seed=args.seed,
        epochs=args.epochs, train_limit=args.train_limit, test_limit=args.test_limit, data_uri=args.data_uri,
        model_dir=Path(args.out),
    )
    manifest = result.manifest
    print(f"trained {manifest.name} ({manifest.training['algorithm']}) in {result.seconds:.1f} s: "
          f"accuracy {result.evaluation.accuracy:.4f} on {result.evaluation.n_test} held-out samples")
    print(f"model {result.model_dir} ({manifest.format}, digest {manifest.model_digest[:12]})")


def _cmd_upload(args: argparse.Namespace) -> None:
    from components.steps.upload.core import run_upload

    result = run_upload(Path(args.model), args.to, args.version)
    verb = "published" if result.published else "already published (no change)"
    size = f"{result.bytes_uploaded / 1e6:.1f} MB in {result.seconds:.2f} s" if result.published else ""
    print(f"{verb}: {result.storage_uri} {size}".rstrip())


def _cmd_fetch(args: argparse.Namespace) -> None:
    from components.datasets.mnist import fetch_mnist

    print(f"mnist ready (md5 verified): {fetch_mnist(Path(args.cache) if args.cache else None)}")


def _cmd_run(args: argparse.Namespace) -> None:
    from pipelines.local_run import run_local_pipeline

    run_local_pipeline(dataset=args.dataset, framework=args.framework, storage_prefix=args.to)


def _cmd_compile(args: argparse.Namespace) -> None:
    from pipelines.compile import REPO_ROOT, write_all

    for path in write_all():
        print(f"wrote {path.relative_to(REPO_ROOT)}")


def build_parser() -> argparse.ArgumentParser:
    """All sub-commands and their flags."""
    parser = _Parser(prog="meshserve", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train and evaluate a model, write a servable model directory")
    train.add_argument("--framework", required=True, help="sklearn or tensorflow")
    train.add_argument("--dataset", required=True, help="iris, digits or mnist")
    train.add_argument("--algorithm", help="sklearn: svm|logreg|random_forest; tensorflow: mlp|cnn")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, default=5, help="tensorflow only")
    train.add_argument("--train-limit", type=int, help="rows of the training split to use (0 = all)")
    train.add_argument("--test-limit", type=int, help="rows of the test split to use")
    train.add_argument("--data-uri", help="MNIST IDX directory (local path or fsspec URI)")
    train.set_defaults(handler=_cmd_train)

    upload = commands.add_parser("upload", help="publish a model directory as an immutable version")
    upload.add_argument("--model", required=True, help="model directory written by `meshserve train`")
    upload.add_argument("--to", required=True, help="pvc://CLAIM/PATH, s3://BUCKET/PREFIX or oss://BUCKET/PREFIX")
    upload.add_argument("--version", help="version name (default: v + 12 hex digits of the model digest)")
    upload.set_defaults(handler=_cmd_upload)

    datasets = commands.add_parser("datasets", help="dataset utilities")
    dataset_commands = datasets.add_subparsers(dest="dataset_command", required=True, parser_class=_Parser)
    fetch = dataset_commands.add_parser("fetch", help="fetch a dataset into the local cache, verified")
    fetch.add_argument("name", choices=["mnist"])
    fetch.add_argument("--cache", help="cache directory (default: $MESHSERVE_CACHE_DIR/mnist or ~/.cache/...)")
    fetch.set_defaults(handler=_cmd_fetch)

    run = commands.add_parser("run", help="run the train-to-serve pipeline locally through kfp.local")
    run.add_argument("--dataset", default="digits")
    run.add_argument("--framework", default="sklearn")
    run.add_argument("--to", default="pvc://my-models-pvc/meshserve", help="storage prefix for model versions")
    run.set_defaults(handler=_cmd_run)

    compile_ = commands.add_parser("compile", help="rewrite the committed component, pipeline and workflow YAML")
    compile_.set_defaults(handler=_cmd_compile)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `meshserve` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], None] = args.handler
    try:
        handler(args)
    except MeshserveError as exc:
        print(f"meshserve {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"meshserve {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

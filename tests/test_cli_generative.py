"""Every command, with flag values hypothesis makes up: never a traceback, always a documented exit code.

Each command starts from a valid (or harmlessly failing) command line; hypothesis replaces or adds
1 to 3 of the command's own flags (read from the parser) with values from a mix of text, numbers,
paths and URL-like strings, and the exit must be one the README documents (0, 2, and the gate's 3
and 4) with at most one line on stderr. What could leave the machine or run for long is pinned: load
targets and servers are a closed port on 127.0.0.1, load size and duration are fixed, `run` always has
an invalid storage target. The case count and run time print at the end (`-s`).
"""

from __future__ import annotations

import contextlib
import io
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.cli import build_parser, command_parser

DOCUMENTED_EXITS = {0, 2, 3, 4}
EXAMPLES = {"compile": 6, "capacity": 6}  # compiling every pipeline, or a 1 s look of load, takes seconds
EXAMPLES_PER_COMMAND = 60
# argv that starts each command; {placeholders} as in tests/support/cli_cases.py
BASES = {
    "train": ["train", "--framework", "sklearn", "--dataset", "iris", "--out", "{tmp}/m", "--train-limit", "60"],
    "upload": ["upload", "--model", "{model}", "--to", "pvc://models/x"],
    "datasets fetch": ["datasets", "fetch", "cifar", "--cache", "{tmp}/cache"],
    "run": ["run", "--to", "ftp://h/never"],
    "bench": ["bench", "http://127.0.0.1:{closed}/", "-n", "2", "-timeout", "1s", "--json", "{tmp}/r.json"],
    "gate": ["gate", "--candidate", "{result}", "--min-samples", "100"],
    "analyze": ["analyze", "--name", "m", "--budget", "2s", "--json", "{tmp}/v.json"],  # nothing is deployed
    "noise": ["noise", "--name", "m", "--runs", "3", "--duration", "1s", "--policy-out", "{tmp}/p.yaml"],
    "deploy": ["deploy", "--name", "m", "--storage-uri", "pvc://m/x"],
    "promote": ["promote", "--name", "m"],
    "rollback": ["rollback", "--name", "m"],
    "status": ["status"],
    "local status": ["local", "status"],  # (`local down` takes no flag: tests/support/cli_cases.py runs it)
    "local mesh": ["local", "mesh"],
    "capacity": ["capacity", "http://127.0.0.1:{closed}/", "--model", "m", "--start-qps", "10", "--max-qps", "10",
                 "--look-seconds", "1", "--max-looks", "1"],
    "local scale": ["local", "scale", "m", "--replicas", "2"],  # nothing is deployed
    "local autoscale": ["local", "autoscale", "m", "--autoscaling", "hpa-cpu", "--max-replicas", "2",
                        "--scale-target", "50"],
    "serve": ["serve", "{emptydir}", "--name", "d"],
    "render": ["render", "--name", "m", "--storage-uri", "s3://b/m/v1"],
    "compile": ["compile", "--out", "{tmp}/compiled"],
    "submit": ["submit", "--argo", "http://127.0.0.1:{closed}"],
}
# flags left as the base sets them: they bound the load, or they would name a host off this machine
PINNED = {"bench": {"-n", "-t", "-qps", "--ramp-to", "--warmup", "-timeout", "--procs", "--json"},
          "run": {"--to"}, "submit": {"--kfp", "--argo"}, "serve": set(), "compile": set(),
          "capacity": {"--start-qps", "--step-qps", "--max-qps", "--look-seconds", "--max-looks", "-c"}}
WORDS = ["", "0", "-1", "1", "65536", "70000", "1e309", "nan", "-0.5", "0.999", "abc", "a" * 300, "KEY=VALUE", "=",
         "x=y=z", "/nonexistent", "{emptydir}", "{junk}", "{array}", "{model}", "{result}", "pvc://m/x", "s3://b/x",
         "oss://b/x", "ftp://x", "http://127.0.0.1:{closed}/", "kubernetes", "local", "istio", "kserve-raw",
         "hpa-qps", "sklearn", "iris", "Bad_Name", "m", "--help-not", "'; rm -rf /", "🙂", "100%"]
VALUES = st.one_of(st.sampled_from(WORDS), st.integers(-10**9, 10**9).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20))


def flags_of(command: str) -> list[tuple[str, bool]]:
    """The command's optional flags (and whether each takes a value), minus the pinned ones."""
    parser = command_parser(build_parser(), BASES[command])
    flags = [(a.option_strings[-1], a.nargs != 0) for a in parser._actions
             if a.option_strings and a.option_strings[0] not in ("-h", "--help")]
    return [(flag, takes) for flag, takes in flags if flag not in PINNED.get(command.split()[0], set())]


def changes_for(flags: list[tuple[str, bool]]):
    """1 to 3 (flag, value) changes; a switch has no value."""
    one = st.sampled_from(flags).flatmap(lambda f: st.tuples(st.just(f[0]), VALUES if f[1] else st.none()))
    return st.lists(one, min_size=1, max_size=3)


def with_changes(base: list[str], changes: list[tuple[str, str | None]]) -> list[str]:
    """The base argv with each (flag, value) replacing the flag's value there, or appended."""
    argv = list(base)
    for flag, value in changes:
        if value is None:
            argv.append(flag)
        elif flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


@pytest.fixture(scope="module")
def tally():
    counted = {"cases": 0, "started": time.monotonic()}
    yield counted
    print(f"\ngenerative CLI test: {counted['cases']} cases in {time.monotonic() - counted['started']:.0f} s")


@pytest.mark.parametrize("command", list(BASES))
def test_any_flag_values_end_in_a_documented_exit(command, cli_workspace, tally, tmp_path_factory, monkeypatch):
    from pipelines.cli import main

    closed = f"http://127.0.0.1:{cli_workspace.values['closed']}"  # any server a value names: never off this host
    monkeypatch.setenv("KUBECONFIG", cli_workspace.values["kubeconfig"])
    for name, value in (("AWS_ENDPOINT_URL", closed), ("OSS_ENDPOINT", closed), ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                        ("AWS_SECRET_ACCESS_KEY", "example")):
        monkeypatch.setenv(name, value)
    flags = flags_of(command)

    @settings(max_examples=EXAMPLES.get(command, EXAMPLES_PER_COMMAND), deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(changes_for(flags))
    def check(changes):
        tmp = tmp_path_factory.mktemp("case")
        monkeypatch.setenv("MESHSERVE_STATE_DIR", str(tmp / "state"))
        monkeypatch.chdir(tmp)  # a relative path a value names lands here
        argv = [cli_workspace.expand(word, tmp) for word in with_changes(BASES[command], changes)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        tally["cases"] += 1
        lines = err.getvalue().strip().splitlines()
        assert "Traceback" not in out.getvalue() + err.getvalue() and "unexpected error" not in err.getvalue(), (
            argv, err.getvalue()[-800:])
        assert code in DOCUMENTED_EXITS, (argv, code, err.getvalue()[-800:])
        assert len(lines) <= 1, (argv, lines[-5:])

    check()

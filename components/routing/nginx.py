"""The local platform's router: nginx, configured from the routing spec, changed by graceful reload.

One nginx (master + 1 worker) on 127.0.0.1 serves three listeners:
- HTTP/1.1 (REST): `proxy_pass` to the model's upstream;
- HTTP/2 (gRPC): `grpc_pass`, balancing each call (L7), like an Envoy sidecar;
- L4 (TCP stream, when the stream module is installed): `proxy_pass` per connection, for comparison:
  a long-lived gRPC connection stays pinned to one backend.
The target model is the `model` header, else the model named in a KServe path (/v1|v2/models/NAME),
else the first route; a header naming no served model is answered 404. The `x-meshserve-track`
header (primary or canary) pins a request to one version, as an Istio header match would: the gate
measures each version through the router that way. Every REST answer names the replica that served it
(`x-meshserve-upstream: 127.0.0.1:PORT`), so what the router does can be checked against `status`.

Weights map to nginx server weights; a version at 0% stays in the upstream as `backup`, so traffic
fails over to it if the other version stops answering (`proxy_next_upstream error`). A route change
writes a new config, has nginx check it, swaps it in and sends SIGHUP: the old worker finishes its
in-flight requests while the new one takes new ones, so no request fails during a promote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import asdict
from pathlib import Path

from components.errors import InvalidInputError, PlatformError
from components.processes.waiting import free_port, wait_for
from components.routing.spec import TRACK_HEADER, Endpoint, Route, RoutingSpec

DEBIAN_NGINX = Path("/usr/sbin/nginx")  # not always on a non-root user's PATH
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
_BALANCER = {"LEAST_CONN": "least_conn;", "LEAST_REQUEST": "least_conn;", "ROUND_ROBIN": ""}
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@,=~-]*")  # nothing nginx's parser would split or interpret


def refuse_unsafe_workdir(workdir: Path) -> None:
    """A state directory whose path nginx's config parser would split or interpret is refused, before anything
    starts (the path goes into the generated nginx.conf)."""
    if not _SAFE_PATH.fullmatch(str(workdir)):
        raise InvalidInputError("MESHSERVE_STATE_DIR", f"the state directory {str(workdir)[:200]!r} holds characters "
                                "a generated nginx.conf cannot carry", "use a path of letters, digits and . _ - / only")


def render_config(spec: RoutingSpec, ports: dict[str, int], workdir: Path, stream_module: bool,
                  telemetry_port: int | None = None) -> str:
    """The whole nginx.conf for a routing spec (pure: the same spec gives the same text); with a
    `telemetry_port`, every request is logged to it over UDP (syslog), one line per upstream attempt list."""
    spec = spec.validated()
    refuse_unsafe_workdir(workdir)
    if not spec.routes:
        raise InvalidInputError("routes", "no model is deployed", "deploy a model first")
    first = spec.routes[0].name
    lines = [f"load_module {STREAM_MODULE};" if stream_module else "",
             "worker_processes 1;", "daemon off;", f"pid {workdir}/nginx.pid;",
             f"error_log {workdir}/error.log warn;", "worker_shutdown_timeout 30s;",
             "events { worker_connections 4096; }", "http {", *_access_log(telemetry_port)]
    lines += [f"  {kind}_temp_path {workdir}/tmp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")]
    lines += ["  map $uri $meshserve_path_model {", f"    default {first};"]
    lines += [f'    "~^/v[12]/models/{r.name}(?:[:/]|$)" {r.name};' for r in spec.routes]
    lines += ["  }", f"  map $http_{spec.header.replace('-', '_').lower()} $meshserve_model {{",
              '    "" $meshserve_path_model;', "    default unknown;"]
    lines += [f"    {r.name} {r.name};" for r in spec.routes]
    lines += ["  }", f'  map "$meshserve_model:$http_{TRACK_HEADER.replace("-", "_")}" $meshserve_upstream {{',
              "    default unknown;"]
    for route in spec.routes:
        lines.append(f'    "{route.name}:" {route.name};')
        lines += [f'    "{route.name}:{track}" {route.name}_{track};' for track, _ in route.pinned_tracks()]
    lines += ["  }"]
    for route in spec.routes:
        for protocol in ("http", "grpc"):
            lines += _upstream(f"{protocol}_{route.name}", route, protocol, spec, keepalive=True)
            for track, pinned in _tracks(route):
                lines += _upstream(f"{protocol}_{route.name}_{track}", pinned, protocol, spec, keepalive=True)
    retries = spec.connect_retries + 1
    lines += [
        "  server {", f"    listen 127.0.0.1:{ports['http']};",
        '    if ($meshserve_upstream = unknown) { return 404 \'{"error": "no such model or track"}\'; }',
        "    location / {", "      proxy_pass http://http_$meshserve_upstream;", "      proxy_http_version 1.1;",
        "      add_header x-meshserve-upstream $upstream_addr always;",
        '      proxy_set_header Connection "";', "      proxy_set_header Host $host;",
        "      proxy_next_upstream error timeout;", f"      proxy_next_upstream_tries {retries};",
        "    }", "  }",
        "  server {", f"    listen 127.0.0.1:{ports['grpc']} http2;",
        "    if ($meshserve_upstream = unknown) { return 404; }",
        "    location / {", "      grpc_pass grpc://grpc_$meshserve_upstream;",
        "      grpc_next_upstream error timeout;", f"      grpc_next_upstream_tries {retries};",
        "    }", "  }", "}"]
    if stream_module:
        lines += ["stream {"] + _upstream("l4_grpc", spec.routes[0], "grpc", spec, keepalive=False)
        lines += ["  server {", f"    listen 127.0.0.1:{ports['l4']};", "    proxy_pass l4_grpc;", "  }", "}"]
    return "\n".join(line for line in lines if line) + "\n"


TELEMETRY_FIELDS = "$upstream_addr|$upstream_status|$upstream_response_time|$server_port"


def _access_log(telemetry_port: int | None) -> list[str]:
    """No access log, or each request's upstream attempts (address, status, seconds) sent to the telemetry
    exporter as syslog over UDP (nothing written to disk, nothing kept by nginx)."""
    if telemetry_port is None:
        return ["  access_log off;"]
    return [f"  log_format meshserve_telemetry '{TELEMETRY_FIELDS}';",
            f"  access_log syslog:server=127.0.0.1:{telemetry_port},tag=meshserve,nohostname meshserve_telemetry;"]


def _tracks(route: Route) -> list[tuple[str, Route]]:
    """The versions a request can be pinned to, each as a single-endpoint route."""
    return [(track, Route(route.name, endpoint)) for track, endpoint in route.pinned_tracks()]


def _upstream(name: str, route: Route, protocol: str, spec: RoutingSpec, keepalive: bool) -> list[str]:
    servers = []
    for address, weight in _weighted_servers(route, protocol):
        role = "backup" if weight == 0 else f"weight={weight}"
        servers.append(f"    server {address} {role} max_fails=1 fail_timeout=3s;")
    balancer = _BALANCER[spec.load_balancer]
    return ([f"  upstream {name} {{"] + ([f"    {balancer}"] if balancer else []) + servers +
            (["    keepalive 64;"] if keepalive else []) + ["  }"])


def _weighted_servers(route: Route, protocol: str) -> list[tuple[str, int]]:
    """Each replica with an nginx weight, so that each version's replicas together get its percentage.

    A version's weight is spread over its replicas: each replica's weight is the version's percentage
    times the other version's replica count (integers, the same ratio).
    """
    endpoints = [(endpoint, weight) for endpoint, weight in zip((route.primary, route.canary), route.weights(),
                                                                strict=True) if endpoint is not None]
    counts = [len(endpoint.addresses(protocol)) for endpoint, _ in endpoints]
    servers = []
    for index, (endpoint, weight) in enumerate(endpoints):
        others = 1
        for other, count in enumerate(counts):
            others *= count if other != index else 1
        servers += [(address, weight * others) for address in endpoint.addresses(protocol)]
    return servers


class NginxRouter:
    """The rollout's router (components/rollout/contract.RolloutRouter) over a local nginx, as the meshes are
    over their objects; its spec and ports live in <state>/router/."""

    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir) / "router"
        self.spec_file = self.dir / "routes.json"

    def refuse_unusable_state(self) -> None:
        """Fail before a deploy starts anything when nginx could not be configured under this state directory."""
        refuse_unsafe_workdir(self.dir)

    # the rollout's router protocol
    def reconcile(self, route: Route) -> None:
        """Put the route in force (starting nginx on first use)."""
        self._apply(self.spec().with_route(route))

    def live_weights(self, name: str) -> dict[str, int]:
        """Each replica address's weight in the model's REST upstream, as nginx's config in force has it (a
        `backup` server: 0; no config or no such upstream: nothing)."""
        config = self.dir / "nginx.conf"
        text = config.read_text() if config.is_file() else ""
        block = re.search(r"^  upstream http_" + re.escape(name) + r" \{\n(.*?)^  \}", text, re.M | re.S)
        servers = re.findall(r"^\s*server (\S+) (?:weight=(\d+)|backup)", block.group(1) if block else "", re.M)
        return {address: int(weight or 0) for address, weight in servers}

    def finalize(self, name: str) -> None:
        """Remove the model's route; stop nginx when no route is left."""
        spec = self.spec().without_route(name)
        if spec.routes:
            self._apply(spec)
        else:
            self._save(spec)
            self.stop()

    def snapshot(self, name: str) -> dict | None:
        """The model's route in force, as data (None when it has none)."""
        route = self.spec().route(name)
        return asdict(route) if route else None

    def restore(self, name: str, snapshot: dict | None) -> None:
        """Put back the route `snapshot` recorded (remove the model's route when it recorded none)."""
        if snapshot is None:
            self.finalize(name)
            return
        self.reconcile(route_from_dict(snapshot))

    # local process control
    def spec(self) -> RoutingSpec:
        """The routing spec in force (empty before the first deploy)."""
        if not self.spec_file.is_file():
            return RoutingSpec()
        data = json.loads(self.spec_file.read_text())
        routes = tuple(route_from_dict(r) for r in data["routes"])
        return RoutingSpec(routes, data["header"], data["load_balancer"], data["connect_retries"])

    def ports(self) -> dict[str, int]:
        """The listener ports: $MESHSERVE_ROUTER_{HTTP,GRPC,L4}_PORT when set, else chosen once and kept
        (in ports.json, which a failed start removes, so a port that clashed is not reused)."""
        path = self.dir / "ports.json"
        chosen = json.loads(path.read_text()) if path.is_file() else {}
        ports = {kind: _port_from_env(kind, chosen.get(kind)) for kind in ("http", "grpc", "l4")}
        if ports == chosen:
            return ports
        self.dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports))
        return ports

    def pid(self) -> int | None:
        """The running nginx master's PID, or None."""
        path = self.dir / "nginx.pid"
        if not path.is_file():
            return None
        text = path.read_text().strip()
        pid = int(text) if text.isdigit() else 0
        return pid if pid and self._is_ours(pid) else None

    def _is_ours(self, pid: int) -> bool:
        """The nginx master started on this directory's config (by the file's identity, so that a copied state
        directory's PID file never reaches the live router)."""
        title = _title(pid).split()
        if title[:3] != ["nginx:", "master", "process"] or "-c" not in title[:-1]:
            return False
        try:
            return os.path.samefile(title[title.index("-c") + 1], self.dir / "nginx.conf")
        except OSError:
            return False

    def orphaned_workers(self) -> set[int]:
        """nginx workers still listening on this router's ports after their master was killed (kill -9)."""
        ports = self.ports() if (self.dir / "ports.json").is_file() else {}
        inodes = _listening_inodes(set(ports.values()))
        return {pid for pid in _socket_holders(inodes) if _title(pid).startswith("nginx: worker")}

    def recover(self) -> list[str]:
        """After the master was killed: stop its orphaned workers and start nginx again on the same ports with
        the routes in force; say what was done."""
        if self.pid() is not None or not self.spec().routes:
            return []
        workers = self.orphaned_workers()
        for worker in workers:
            os.kill(worker, signal.SIGQUIT)
        wait_for(lambda: not any(_title(worker) for worker in workers), 35)
        self._apply(self.spec())
        return [f"the router was not running (its {len(workers)} orphaned workers stopped): restarted on the same "
                f"ports with the routes in force"]

    def telemetry_port(self) -> int | None:
        """The UDP port the router logs each request to (None: telemetry is off)."""
        path = self.dir / "telemetry.json"
        return int(json.loads(path.read_text())["port"]) if path.is_file() else None

    def send_telemetry(self, port: int | None) -> None:
        """Log each request to the telemetry exporter at UDP `port` from now on (None: stop); reloads nginx when
        it runs (gracefully: no request is dropped)."""
        path = self.dir / "telemetry.json"
        if port == self.telemetry_port():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if port is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps({"port": port}))
        if self.pid() is not None and self.spec().routes:
            self._apply(self.spec())

    def stream_enabled(self) -> bool:
        """Whether the L4 listener exists (needs nginx's stream module)."""
        return STREAM_MODULE.is_file()

    def stop(self) -> None:
        """Stop nginx gracefully (SIGQUIT), if this state directory started it."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGQUIT)
        wait_for(lambda: not _title(pid), 35)

    def _apply(self, spec: RoutingSpec) -> None:
        """Render, check with `nginx -t`, swap in, then reload (or start)."""
        binary = nginx_binary()
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        text = render_config(spec, self.ports(), self.dir, self.stream_enabled(), self.telemetry_port())
        candidate = self.dir / "nginx.conf.next"
        candidate.write_text(text)
        checked = subprocess.run([binary, "-t", "-q", "-c", str(candidate), "-p", str(self.dir)],
                                 capture_output=True, text=True)
        if checked.returncode != 0:
            raise PlatformError("router", f"nginx refused the new config: {checked.stderr.strip()[-300:]}",
                               "the routes in force were left unchanged; report this as a bug")
        candidate.replace(self.dir / "nginx.conf")
        pid = self.pid()
        if pid is None:
            self._start(binary)
        else:
            self._reload(pid)
        self._save(spec)

    def _start(self, binary: str) -> None:
        log = open(self.dir / "nginx.out", "ab")
        process = subprocess.Popen([binary, "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)],
                                   stdout=log, stderr=log, start_new_session=True)
        # nginx writes its pid file once its sockets are bound; a port already taken makes it exit instead.
        if not wait_for(lambda: self.pid() is not None or process.poll() is not None, 10) or process.poll():
            (self.dir / "ports.json").unlink(missing_ok=True)  # a port that clashed is not remembered
            error = (self.dir / "error.log").read_text()[-300:] if (self.dir / "error.log").exists() else ""
            raise PlatformError("router", f"nginx did not start ({error.strip() or 'see nginx.out'})",
                               "free the router ports (MESHSERVE_ROUTER_HTTP_PORT, ..._GRPC_PORT, ..._L4_PORT)")

    def _reload(self, pid: int) -> None:
        """SIGHUP, then wait until the old worker has finished its requests and exited."""
        old_workers = _children(pid)
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: _children(pid) and not (old_workers & _children(pid)), 35)

    def _save(self, spec: RoutingSpec) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {"routes": [asdict(r) for r in spec.routes], "header": spec.header,
                "load_balancer": spec.load_balancer, "connect_retries": spec.connect_retries}
        temporary = self.spec_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        temporary.replace(self.spec_file)


def nginx_binary() -> str:
    """The nginx executable; its absence is an error that says how to install it."""
    found = shutil.which("nginx") or (str(DEBIAN_NGINX) if DEBIAN_NGINX.exists() else None)
    if found is None:
        raise InvalidInputError("router", "nginx is not installed",
                                "run `make run` (installs nginx-light on Debian/Ubuntu) or install nginx")
    return found


def _endpoint(data: dict | None) -> Endpoint | None:
    return Endpoint(**data) if data else None


def route_from_dict(data: dict) -> Route:
    """A route as `asdict` wrote it (files written before the baseline track have none)."""
    return Route(data["name"], _endpoint(data["primary"]), _endpoint(data["canary"]), data["canary_weight"],
                 _endpoint(data.get("baseline")))


def _port_from_env(kind: str, kept: int | None = None) -> int:
    from_env = os.environ.get(f"MESHSERVE_ROUTER_{kind.upper()}_PORT")
    if from_env:
        if not from_env.isdigit() or not 0 < int(from_env) < 65536:
            raise InvalidInputError(f"MESHSERVE_ROUTER_{kind.upper()}_PORT", f"{from_env!r} is not a port",
                                    "set 1 to 65535, or unset it")
        return int(from_env)
    if kept:
        return kept
    return free_port()


def _title(pid: int) -> str:
    """The process's command line as one string ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _listening_inodes(ports: set[int]) -> set[str]:
    """The socket inodes listening on 127.0.0.1 at these ports."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if address == "0100007F" and int(port, 16) in ports and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def _socket_holders(inodes: set[str]) -> set[int]:
    """The processes holding any of these sockets open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders = set()
    for directory in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) in wanted for fd in directory.iterdir()):
                holders.add(int(directory.parent.name))
        except OSError:
            continue
    return holders


def _children(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children

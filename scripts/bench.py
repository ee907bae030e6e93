#!/usr/bin/env python3
"""Benchmarks on loopback: throughput and latency of API calls next to a bare axum hello-world
(and the framework's floor for two of them: their requests answered by a constant body of the
same size), the same calls again with every store round trip delayed by 5 ms (DynamoDB's typical in-region
latency), process start-to-first-response time and peak RSS of the local server and of each Lambda
binary next to a bare lambda_runtime hello-world (the median of five starts each).

Run by `make bench` after a release build (BENCH_PROFILE=local measures the `make run` build instead). Prints Markdown tables (also written to
target/bench.md). Uses wrk (Debian package) as the load generator.
"""
import json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", os.environ.get("BENCH_PROFILE", "release"))
DURATION = os.environ.get("BENCH_SECONDS", "8")
# Each call's DURATION is run in this many slices, each between two hello-world slices.
SLICES = int(os.environ.get("BENCH_SLICES", "4"))
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
THREADS = "2"
STARTS = int(os.environ.get("BENCH_STARTS", "5"))
DELAY_MS = os.environ.get("BENCH_STORE_DELAY_MS", "5")
# Every request of a load run comes from 127.0.0.1 and one user opens every zoo session: the
# caps on what one address or user holds unpaid (see No hoarding in the README) would answer 429.
CAPS_OFF = {name: "0" for name in ("CAP_ADDRESS_SEATS", "CAP_ADDRESS_RESERVATIONS", "CAP_BUYER_UNPAID_ORDERS",
                                   "CAP_ADDRESS_UNPAID_ORDERS", "CAP_USER_ZOO_SESSIONS", "CAP_ADDRESS_ZOO_SESSIONS",
                                   "CAP_USER_ZOO_PLACES", "CAP_ADDRESS_ZOO_PLACES")}
# The deployed functions read their root certificates from the runtime's one bundle
# (SSL_CERT_FILE in template.yaml); this machine's equivalent of that file.
CERT_BUNDLE = next((p for p in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
                    if os.path.exists(p)), "")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def stop(proc):
    """Kills a server and waits until it is gone: the kernel frees a process's memory as it
    exits (1.7 GB for the local server after its load runs), and a measurement started before
    that is done shares the machine with it."""
    proc.kill()
    proc.wait()


def start_server(binary, port, env_extra=None, path="/v1/health"):
    env = dict(os.environ, PORT=str(port), RUST_LOG="error", **(env_extra or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}{path}"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            if proc.poll() is not None:
                raise SystemExit(f"{binary} exited early")
            time.sleep(0.002)
    SERVERS[port] = proc.pid
    return proc, (time.perf_counter() - t0) * 1000


# The process serving each port (the server CPU column: `cpu_seconds`).
SERVERS = {}


def cpu_seconds(pid):
    """User and system CPU time a process has used so far, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def call_raw(port, method, path, token=None, body=None, headers=None):
    """One request; the answer's body as bytes."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.read()


def call(port, method, path, token=None, body=None, headers=None):
    raw = call_raw(port, method, path, token, body, headers)
    return json.loads(raw) if raw else None


def token(sub, roles=()):
    out = subprocess.run([os.path.join(REL, "local"), "token", sub, *roles], capture_output=True, text=True, check=True)
    return out.stdout.strip()


LUA = """
wrk.method = "{method}"
wrk.headers["content-type"] = "application/json"
{auth}
{body}
"""


def wrk(port, path, method="GET", tok=None, body=None, script=None, threads=THREADS, connections=CONNECTIONS,
        duration=None):
    duration = duration or DURATION
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        if script is None:
            auth = f'wrk.headers["authorization"] = "Bearer {tok}"' if tok else ""
            b = f"wrk.body = {json.dumps(json.dumps(body))}" if body is not None else ""
            script = LUA.format(method=method, auth=auth, body=b)
        f.write(script)
        lua = f.name
    pid = SERVERS.get(port)
    cpu0 = cpu_seconds(pid) if pid else None
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "-s", lua,
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True).stdout
    os.unlink(lua)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    cpu1 = cpu_seconds(pid) if cpu0 is not None else None
    # The server's CPU time (all its threads, user and kernel) per request answered: what the
    # call costs the server, whatever the load generator costs beside it on the same cores.
    server_us = (cpu1 - cpu0) * 1e6 / (rps * float(duration)) if cpu1 is not None and rps else None

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(non2xx.group(1)) if non2xx else 0, server_us


class FakeRuntime(BaseHTTPRequestHandler):
    """The Lambda runtime API, enough for one invocation."""
    event = b"{}"
    done = None
    # Keep-alive, as the real runtime API: an HTTP/1.0 server closes each connection after its
    # answer, and a client that sends its next request on the pooled connection before it sees
    # the close fails the start (about one start in 150: "IncompleteMessage").
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the function was stopped while its next poll was open

    served = False

    def do_GET(self):
        if self.path.endswith("/invocation/next") and FakeRuntime.served:
            time.sleep(5)  # the runtime polls for its next event: keep it waiting until it is stopped
            return
        if self.path.endswith("/invocation/next"):
            FakeRuntime.served = True
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(FakeRuntime.event)))
            self.end_headers()
            self.wfile.write(FakeRuntime.event)
        else:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()
        if FakeRuntime.done is not None:
            FakeRuntime.done(self.path, body)


class AwsStandIn:
    """A loopback stand-in for the AWS APIs a first invocation calls (AWS_ENDPOINT_URL points
    here): it answers every request at once with SES v2's SendEmail answer (no other service is
    called by the sample events). Raw sockets on one thread, so that a start is timed with as
    little of the stand-in's own time as a loopback peer can take (Python's HTTP server, which
    answered these requests before, spent 0.2 ms from a request's first line to its answer, after
    starting a thread for the connection), as on AWS minus the network and the service."""

    ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\n\r\n"
              b'{"MessageId":"bench"}')

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                buf = b""
                while True:
                    while b"\r\n\r\n" not in buf:
                        more = conn.recv(65536)
                        if not more:
                            break
                        buf += more
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        break
                    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                    need = int(m.group(1)) if m else 0
                    while len(rest) < need:
                        more = conn.recv(65536)
                        if not more:
                            break
                        rest += more
                    buf = rest[need:]
                    self.requests += 1
                    try:
                        conn.sendall(self.ANSWER)
                    except OSError:
                        break  # the function was stopped

    def close(self):
        self.sock.close()


# The secret the Lambda starts are configured with, and the caller each sample event is sent as:
# the samples carry no token (they are for `cargo lambda invoke`), and a first answer of 401
# would time the refusal, not the call.
LAMBDA_SECRET = "bench-lambda-secret-0123456789abcdef0123456789"
EVENT_CALLER = {"admin": ("1", ("admin",)), "deals": ("21", ()), "payments": ("21", ())}


def with_token(event_bytes, name):
    caller = EVENT_CALLER.get(name)
    if caller is None:
        return event_bytes
    out = subprocess.run([os.path.join(REL, "local"), "token", caller[0], *caller[1]], capture_output=True,
                         text=True, check=True, env=dict(os.environ, JWT_SECRET=LAMBDA_SECRET))
    event = json.loads(event_bytes)
    event.setdefault("headers", {})["authorization"] = f"Bearer {out.stdout.strip()}"
    return json.dumps(event).encode()


def lambda_cold_start(binary, event_file):
    """Start the binary against a fake runtime API; time until it posts its first response.
    Returns (ms, peak RSS KiB, the answer's HTTP status)."""
    port = free_port()
    with open(event_file, "rb") as f:
        FakeRuntime.event = with_token(f.read(), os.path.basename(binary))
    finished = threading.Event()
    result = {}

    def done(path, body):
        result["path"], result["body"] = path, body
        finished.set()

    FakeRuntime.done = done
    FakeRuntime.served = False
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeRuntime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    aws = AwsStandIn()
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME="bench",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="1", AWS_REGION="us-east-1",
               AWS_LAMBDA_LOG_FORMAT="json", RUST_LOG="error", SSL_CERT_FILE=CERT_BUNDLE,
               # Lambda hands every function its role's credentials in the environment.
               AWS_ACCESS_KEY_ID="ASIABENCH", AWS_SECRET_ACCESS_KEY="bench", AWS_SESSION_TOKEN="bench",
               AWS_ENDPOINT_URL=f"http://127.0.0.1:{aws.port}", JWT_SECRET=LAMBDA_SECRET)
    # Lambda's environment has no certificate directory or extra CA bundle; this machine's may.
    for name in ("TABLE_NAME", "SSL_CERT_DIR", "AWS_CA_BUNDLE"):
        env.pop(name, None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = finished.wait(10)
    ms = (time.perf_counter() - t0) * 1000
    rss = peak_rss_kib(proc.pid)
    proc.kill()
    proc.wait()
    server.shutdown()
    aws.close()
    ok = ok and "/response" in result.get("path", "")
    try:
        answer = json.loads(result.get("body") or b"{}")
        # An HTTP function's status; an SQS function's failed messages (none: all handled).
        status = answer.get("statusCode")
        if status is None and "batchItemFailures" in answer:
            status = f"{len(answer['batchItemFailures'])} failed"
    except (ValueError, AttributeError):
        status = None
    if aws.requests:
        # What reached the stand-in (the notifier's email: one SES request).
        status = f"{status}, {aws.requests} to AWS"
    return (ms if ok else None), rss, status


def load_cases(api_port, hello_port=None):
    """The calls under load: (name, port, path, method, token, body, *custom wrk script)."""
    supplier, consumer = token("21"), token("14")
    deal = call(api_port, "POST", "/api/v1/orders", supplier, {"order": {
        "order_description": "bench", "verify_days": 3, "commission_payer": "consumer", "cost": 1000,
        "supplier_id": "21", "consumer_id": "14"}})["order"]["id"]
    cases = [("hello world (bare axum)", hello_port, "/hello", "GET", None, None)] if hello_port else []
    cases.append(("POST /api/v1/orders/calc_commission", api_port, "/api/v1/orders/calc_commission", "POST",
                  supplier, {"cost": 10000000, "commission_payer": "50/50"}))
    cases.append((f"GET /api/v1/orders/:id", api_port, f"/api/v1/orders/{deal}", "GET", consumer, None))
    cases.append(("GET /v1/health", api_port, "/v1/health", "GET", None, None))
    cases.extend(extra_cases(api_port, hello_port))
    return cases


def floor_run(cases, bases):
    """Each call's exact requests (for a scripted case, its wrk script) sent to the `floor` server,
    which answers every one with a constant body of the call's answer size through the same
    framework: what each call would reach if its handler cost nothing, as a ratio to the
    hello-world of the call's wrk threads and connections, run just before and after it."""
    out = []
    for prefix in ("POST /api/v1/orders/calc_commission", "GET /api/v1/orders/", SEAT_CASE, ZOO_CASE):
        case = next((c for c in cases if c[0].startswith(prefix)), None)
        if case is None:
            continue
        name, api_port, path, method, tok, body, *custom = case
        size = ANSWER_BYTES.get(name) or len(call_raw(api_port, method, path, tok, body))
        port = free_port()
        floor, _ = start_server(os.path.join(REL, "floor"), port, {"FLOOR_BYTES": str(size)}, path="/hello")
        try:
            out += run_cases([(f"floor of {name} ({size}-byte answer)", port, path, method, tok, body, *custom)],
                             bases=bases)
        finally:
            stop(floor)
    return out


class Baselines:
    """The hello-world runs of each wrk group (threads, connections), interleaved with the calls:
    each call runs in SLICES slices (its DURATION in all), each between two hello-world slices,
    and its ratio is the median of its slices' rates, each over the mean of the hello-world
    slices beside it, so that the machine's speed at that moment is in both sides of the ratio. The hello-world's own
    rate moves by a third within minutes on a shared VM (141,586 and 102,299 requests a second in
    two runs of one build ten minutes apart; medians of 97,557 and 125,989 in two benches of one
    build twenty minutes apart), and spells shorter than a minute: a ratio to one run of it, to
    the median of runs minutes away from the call, or to one 8-second run on either side of the
    call (until 2026-12-06 23:00; two runs of one build then gave calc_commission 0.61 and 0.69,
    GET deal 0.56 and 0.48) moved with them. A group without a hello-world (the delayed run) is in
    ratio to its first call."""

    def __init__(self, cases, connections=CONNECTIONS):
        self.cases, self.runs, self.first, self.last = {}, {}, {}, None
        for case in cases:
            if case[0].startswith("hello world"):
                self.cases.setdefault(group_of(case, connections), case)
        self.connections = connections

    def run(self, group):
        _, port, path, method, tok, body, *custom = self.cases[group]
        script, threads, conns = (custom + [None, THREADS, self.connections][len(custom):])[:3]
        result = wrk(port, path, method, tok, body, script, threads, conns, duration=slice_seconds())
        self.runs.setdefault(group, []).append(result)
        self.last = group
        return result[0]

    def measure(self, group, call):
        """`call(duration)`'s wrk result (its slices together: the mean rate, the median p50, the
        worst p99, every non-2xx answer, the server's CPU per request over all of them) and its
        ratio: the median of its slices' rates, each over the hello-world slices right before and
        after it (the one before the first reused when it was the last thing run)."""
        if group not in self.cases:
            result = call(None)
            return result, result[0] / self.first.setdefault(group, result[0])
        hellos = [self.runs[group][-1][0] if self.last == group else self.run(group)]
        parts = []
        for _ in range(SLICES):
            parts.append(call(slice_seconds()))
            self.last = None
            hellos.append(self.run(group))
        rates = [p[0] for p in parts]
        # Each slice over the mean of the hello-world slices on either side of it; the median of
        # those: a burst of the machine (a hello-world slice of 150,000 a second among ones of
        # 105,000, seen) moves one slice's ratio, not the call's.
        ratios = [r / ((a + b) / 2) for r, a, b in zip(rates, hellos, hellos[1:])]
        cpu = [p[4] for p in parts]
        per_request = (sum(c * r for c, r in zip(cpu, rates)) / sum(rates)
                       if None not in cpu and sum(rates) else None)
        result = (statistics.mean(rates), statistics.median(p[1] for p in parts), max(p[2] for p in parts),
                  sum(p[3] for p in parts), per_request)
        return result, statistics.median(ratios)

    def median(self, group):
        """A hello-world row: its median run (by rate)."""
        ranked = sorted(self.runs[group], key=lambda r: r[0])
        return ranked[len(ranked) // 2]


def slice_seconds():
    """The length of one slice of a call (or of a hello-world run beside it)."""
    return f"{float(DURATION) / SLICES:g}"


def group_of(case, connections=CONNECTIONS):
    _, _, _, _, _, _, *custom = case
    _, threads, conns = (custom + [None, THREADS, connections][len(custom):])[:3]
    return (str(threads), str(conns))


def run_cases(cases, connections=CONNECTIONS, bases=None):
    """Each call under wrk, with its ratio to the hello-world of its wrk group (see
    [`Baselines`]; a call with fewer connections keeps the cores idle more often, whatever it
    does, so it is compared with a hello-world loaded the same way). A hello-world's row is
    placed where it is listed and given the median of all its runs by `finish`."""
    bases = bases or Baselines(cases, connections)
    rows = []
    for case in cases:
        name, port, path, method, tok, body, *custom = case
        group = group_of(case, connections)
        if name.startswith("hello world"):
            if not bases.runs.get(group):
                bases.run(group)
            rows.append((name, group))
            continue
        script, threads, conns = (custom + [None, THREADS, connections][len(custom):])[:3]
        (rps, p50, p99, bad, cpu), ratio = bases.measure(
            group, lambda duration: wrk(port, path, method, tok, body, script, threads, conns, duration))
        rows.append((name, rps, p50, p99, ratio, bad, cpu))
    return rows


def finish(rows, bases):
    """The hello-world rows filled in with their median runs."""
    out = []
    for row in rows:
        if len(row) == 2:
            rps, p50, p99, bad, cpu = bases.median(row[1])
            row = (row[0], rps, p50, p99, 1.0, bad, cpu)
        out.append(row)
    return out


def delayed_run():
    """The local server with every store round trip delayed by DELAY_MS (and the outbox relayed
    off the request path, as the table's stream does in AWS): each call's latency."""
    port = free_port()
    env = {"JOB_INTERVAL": "3600", "ZOO_SLOT_CAPACITY": "100000000", "STORE_DELAY_MS": DELAY_MS,
           "OUTBOX_RELAY": "stream", **CAPS_OFF}
    api, _ = start_server(os.path.join(REL, "local"), port, env)
    try:
        return run_cases(load_cases(port), connections="8")
    finally:
        stop(api)


def unpacked(binaries, into):
    """Each binary copied into `into` (one sequential write, as Lambda unpacks a function's zip),
    with its original file name. A binary is started from its copy, not from where the linker
    wrote it: the kernel keeps a freshly linked file in the page cache in small pieces, and a
    process mapping it takes more page faults. The same `deals` binary measured 7.7 ms (5.8 ms
    of CPU) from target/release and 5.5 ms (3.6 ms) from a copy, nine starts each, taken in turn;
    the bare runtime 5.4 ms either way."""
    out = []
    for name, binary, event in binaries:
        copy = os.path.join(into, name.strip("`").replace(" ", "_"), os.path.basename(binary))
        os.makedirs(os.path.dirname(copy))
        shutil.copy2(binary, copy)
        out.append((name, copy, event))
    return out


def median_starts(binaries):
    """For each (name, binary, event): the median of STARTS first invocations (of those that
    answered), the peak RSS and the answers. The starts go round the binaries in turn, so that a
    busy moment of the machine falls on several of them rather than on all five starts of one."""
    runs = {name: [] for name, _, _ in binaries}
    with tempfile.TemporaryDirectory() as into:
        binaries = unpacked(binaries, into)
        for _ in range(STARTS):
            for name, binary, event in binaries:
                runs[name].append(lambda_cold_start(binary, event))
    out = []
    for name, _, _ in binaries:
        times = [ms for ms, _, _ in runs[name] if ms is not None]
        rss = max((r for _, r, _ in runs[name] if r), default=None)
        # Every start's answer, so that a start that answered differently shows.
        status = "/".join(sorted({str(st) for _, _, st in runs[name]}))
        if len(times) < len(runs[name]):
            print(f"{name}: {len(runs[name]) - len(times)} of {len(runs[name])} starts did not answer", file=sys.stderr)
        out.append((name, (statistics.median(times) if times else None), rss, status))
    return out


def main():
    starts = []
    hello_port, api_port = free_port(), free_port()
    hello, hello_ms = start_server(os.path.join(REL, "hello"), hello_port, path="/hello")
    api, api_ms = start_server(os.path.join(REL, "local"), api_port,
                               {"JOB_INTERVAL": "3600", "ZOO_SLOT_CAPACITY": "100000000", **CAPS_OFF})
    try:
        cases = load_cases(api_port, hello_port)
        bases = Baselines(cases)
        rows = run_cases(cases, bases=bases)
        rows = finish(rows + floor_run(cases, bases), bases)
        starts.append(("local server (all groups)", api_ms, peak_rss_kib(api.pid)))
        starts.append(("hello world (bare axum)", hello_ms, peak_rss_kib(hello.pid)))
    finally:
        stop(api)
        stop(hello)
    delayed = delayed_run()
    lambdas = median_starts(
        [("lambda_runtime hello world", os.path.join(REL, "lambda_hello"), os.path.join(ROOT, "events", "health.json"))]
        + [(f"`{binary}`", os.path.join(REL, binary), event) for binary, event in lambda_binaries()])
    base_ms = lambdas[0][1]

    out = ["| call | req/s | p50 ms | p99 ms | vs hello | server CPU µs/req | non-2xx |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rps, p50, p99, ratio, bad, cpu in rows:
        out.append(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {ratio:.2f} | {fmt_us(cpu)} | {bad} |")
    out += ["", f"Every store round trip delayed by {DELAY_MS} ms (8 connections):", "",
            "| call | req/s | p50 ms | p99 ms | non-2xx |", "|---|---:|---:|---:|---:|"]
    for name, rps, p50, p99, _, bad, _ in delayed:
        out.append(f"| {name} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {bad} |")
    out += ["", "| process | start to first response, ms | peak RSS, MiB |", "|---|---:|---:|"]
    for name, ms, rss in starts:
        out.append(f"| {name} | {fmt_ms(ms)} | {fmt_rss(rss)} |")
    out += ["", f"Lambda binaries on a fake runtime API, first invocation (median of {STARTS} starts):", "",
            "| function | start to first response, ms | vs lambda_runtime hello | peak RSS, MiB | answer |",
            "|---|---:|---:|---:|---:|"]
    for name, ms, rss, status in lambdas:
        ratio = f"{ms / base_ms:.2f}" if ms and base_ms else "?"
        out.append(f"| {name} | {fmt_ms(ms)} | {ratio} | {fmt_rss(rss)} | {status} |")
    text = "\n".join(out)
    print(text)
    with open(os.path.join(ROOT, "target", "bench.md"), "w") as f:
        f.write(text + "\n")


def fmt_us(us):
    return f"{us:.1f}" if us is not None else "?"


def fmt_ms(ms):
    return f"{ms:.1f}" if ms is not None else "failed"


def fmt_rss(rss):
    return f"{rss / 1024:.1f}" if rss else "?"


HOLD_RELEASE = """
local buyers = {%s}
local n = 0
function setup(thread)
  n = n + 1
  local b = buyers[n]
  thread:set("pr", b[1]); thread:set("seat", b[2]); thread:set("auth", b[3]); thread:set("first", n == 1)
end
-- Each thread's two requests, made once: a request's text is the load generator's work on
-- the same cores, not the server's.
local hold, release
-- wrk asks the first thread's script for one request after `init` to check it, and never sends
-- that one: it must not count as a hold, or that thread's first request sent would release a
-- seat it does not hold (a 404 in every run, until 2026-12-07).
local checked
function init(args)
  local h = { ["content-type"] = "application/json", ["authorization"] = "Bearer " .. auth }
  hold = wrk.format("POST", "/api/v1/reservations/" .. pr .. "/tickets", h, '{"seat_id":"' .. seat .. '"}')
  release = wrk.format("DELETE", "/api/v1/reservations/" .. pr .. "/tickets/" .. seat, h, nil)
  checked = not first
end
local held = false
function request()
  if not checked then
    checked = true
    return hold
  end
  held = not held
  if held then return hold end
  return release
end
"""

SESSION = """
local n = 0
local body = %s
-- The request's head but its length, made once (as wrk.format would make it): each request
-- is that head, its body's length and the body, whose numbers make each session new.
local head
function init(args)
  head = "POST /v1/payments/sessions HTTP/1.1\\r\\nHost: " .. wrk.headers["Host"] ..
    "\\r\\ncontent-type: application/json\\r\\nauthorization: Bearer %s\\r\\nContent-Length: "
end
function request()
  n = n + 1
  local b = string.format(body, n, n)
  return head .. #b .. "\\r\\n\\r\\n" .. b
end
"""


# The answer sizes of the calls driven by a script (by case name), measured when their cases are
# made; the floor answers with them.
ANSWER_BYTES = {}
SEAT_CASE = "seat hold / release (8 buyers)"
ZOO_CASE = "POST /v1/payments/sessions"


def extra_cases(port, hello_port=None):
    """Seat hold/release (one buyer per connection, each with its own seat: a buyer makes one
    request at a time), with the hello-world at the same concurrency first, and zoo session
    creation."""
    buyers = 8
    seats = call(port, "GET", "/api/v1/events/demo-concert/seats")["seats"]
    free = [s["id"] for s in seats if s.get("free")][:buyers]
    rows = []
    for i, seat in enumerate(free):
        tok = token(str(5000 + i))
        pr = call(port, "POST", "/api/v1/reservations", tok, {"event_id": "demo-concert"})["reservation"]["id"]
        rows.append('{"%s","%s","%s"}' % (pr, seat, tok))
    hold = HOLD_RELEASE % ",".join(rows)
    # The size of a hold's and a release's answer (the floor answers each with their mean), from
    # one of each by a buyer of its own, whose seat is left free.
    tok = token(str(5000 + buyers))
    pr = call(port, "POST", "/api/v1/reservations", tok, {"event_id": "demo-concert"})["reservation"]["id"]
    seat = [s["id"] for s in seats if s.get("free")][buyers]
    held = call_raw(port, "POST", f"/api/v1/reservations/{pr}/tickets", tok, {"seat_id": seat})
    freed = call_raw(port, "DELETE", f"/api/v1/reservations/{pr}/tickets/{seat}", tok)
    ANSWER_BYTES[SEAT_CASE] = (len(held) + len(freed)) // 2
    visit = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 30 * 86400))
    body = json.dumps({
        "session_id": "bench-%d", "order": {"order_id": "ZT-BENCH-%d",
        "total_amount": {"value": "1000.00", "currency": "RUB"},
        "items": [{"ticket_type": "adult", "quantity": 1, "unit_price": {"value": "1000.00", "currency": "RUB"},
                   "visit_date": visit, "visit_time": "10:00"}]},
        "customer": {"email": "visitor@example.com", "phone": "+79991111111"},
        "confirmation": {"type": "redirect", "return_url": "https://zooticket.ru/payment/success",
                         "cancel_url": "https://zooticket.ru/payment/cancel"}})
    visitor = token("7000")
    session = SESSION % (json.dumps(body), visitor)
    # A session's answer, from one created the way the script creates them (its numbers outside
    # the script's range).
    one = json.loads(body.replace("%d", "0"))
    ANSWER_BYTES[ZOO_CASE] = len(call_raw(port, "POST", "/v1/payments/sessions", visitor, one))
    same = [(f"hello world (bare axum), {len(rows)} connections on {len(rows)} threads", hello_port, "/hello", "GET",
             None, None, None, len(rows), len(rows))] if hello_port else []
    return same + [
        (SEAT_CASE, port, "/", "POST", None, None, hold, len(rows), len(rows)),
        (ZOO_CASE, port, "/v1/payments/sessions", "POST", None, None, session),
    ]


def lambda_binaries():
    """(binary, sample event) for every HTTP Lambda with a sample event."""
    found = []
    for name in sorted(os.listdir(os.path.join(ROOT, "functions"))):
        event = os.path.join(ROOT, "events", f"{name}.json")
        # The relay needs DynamoDB and SQS to start (it refuses without TABLE_NAME and QUEUE_URL).
        if name not in ("local", "relay") and os.path.exists(os.path.join(REL, name)) and os.path.exists(event):
            found.append((name, event))
    return found


if __name__ == "__main__":
    main()

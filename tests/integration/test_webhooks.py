#!/usr/bin/env python3
"""Webhooks from real failovers on real PostgreSQL servers, received by a real
HTTP server on 127.0.0.1 that this test starts (ports from 26000 up).

(a) a planned stop: every transition arrives, in order, with one run id and
    strictly increasing seq, valid against docs/event.schema.json and signed
    with a valid HMAC; an event filter, the Slack format, retries after HTTP
    500 and a refused connection (spooled); then a second pgfailover
    invocation (a dry run) with that endpoint up sends the spooled events
    first and empties the spool;
(b) a crash: failover.needs_rewind; and the same failover with an endpoint
    that hangs for 30 s takes no longer than the one without, plus at most
    delivery_budget;
(c) pgpool runs failover_command again after the failover and the old
    primary's follow-primary are done: the re-run says the old primary already
    follows, sends no failover.needs_rewind and keeps it a synchronous standby.

Python 3 standard library only: the schema is checked by the small validator
below (the keywords docs/event.schema.json uses).
"""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from pgcluster import PgCluster  # noqa: E402
from pgfo import failover_hook, pgpool_args, start_cli, write_config  # noqa: E402

PORT_OFFSET = 600
HTTP_PORT_BASE = 26000
SCHEMA_PATH = os.path.join(HERE, "..", "..", "docs", "event.schema.json")
SECRET = "it-webhook-secret-\u00e9"
BUDGET = 2.0

STEPS = ["lock", "inspect", "stop_old_primary", "wait_shutdown", "read_checkpoint",
         "wait_flush", "candidates", "sync_standbys", "promote", "verify", "one_primary"]

# libcurl honours proxy variables; the receiver is local.
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost"


# --------------------------------------------------------------------------
# JSON Schema (2020-12), the subset docs/event.schema.json uses
# --------------------------------------------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN = {"$schema", "$id", "$defs", "title", "description", "format", "type", "enum", "const",
          "pattern", "minimum", "maximum", "minLength", "required", "properties",
          "additionalProperties", "items", "allOf", "if", "then", "$ref"}


def schema_errors(schema, value, root=None, path="$"):
    """Violations of `schema` by `value` (empty list: valid)."""
    root = schema if root is None else root
    if schema is True:
        return []
    if schema is False:
        return ["%s: not allowed" % path]
    unknown = set(schema) - _KNOWN
    if unknown:
        raise AssertionError("validator does not implement %s" % sorted(unknown))
    errs = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/"), ref
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        errs += schema_errors(target, value, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return errs + ["%s: %r is not of type %s" % (path, value, types)]
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in %s" % (path, value, schema["enum"]))
    if "const" in schema and value != schema["const"]:
        errs.append("%s: %r is not %r" % (path, value, schema["const"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append("%s: %r is too short" % (path, value))
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %r < %r" % (path, value, schema["minimum"]))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %r > %r" % (path, value, schema["maximum"]))
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append("%s: missing required %r" % (path, k))
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errs += schema_errors(props[k], v, root, "%s.%s" % (path, k))
            elif "additionalProperties" in schema:
                errs += schema_errors(schema["additionalProperties"], v, root, "%s.%s" % (path, k))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += schema_errors(schema["items"], v, root, "%s[%d]" % (path, i))
    for sub in schema.get("allOf", []):
        errs += schema_errors(sub, value, root, path)
    if "if" in schema and not schema_errors(schema["if"], value, root, path):
        errs += schema_errors(schema.get("then", True), value, root, path)
    return errs


# --------------------------------------------------------------------------
# the receiver
# --------------------------------------------------------------------------

def free_port(start=HTTP_PORT_BASE, taken=()):
    for port in range(start, start + 500):
        if port in taken:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port from %d" % start)


class Receiver:
    """An HTTP server in a thread. Per path: /hang sleeps 30 s, a path listed
    in fail_first answers 500 to its first N requests, anything else 200."""

    def __init__(self, port, fail_first=None):
        self.port = port
        self.fail_first = dict(fail_first or {})
        self.requests = []      # dicts: path, headers, body, status, t
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                path = self.path
                with receiver.lock:
                    seen = sum(1 for r in receiver.requests if r["path"] == path)
                    status = 500 if seen < receiver.fail_first.get(path, 0) else 200
                    receiver.requests.append({"path": path, "headers": dict(self.headers),
                                              "body": body, "status": status,
                                              "t": time.monotonic()})
                if path == "/hang":
                    time.sleep(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def got(self, path, status=200):
        with self.lock:
            return [r for r in self.requests if r["path"] == path and
                    (status is None or r["status"] == status)]

    def events(self, path):
        return [json.loads(r["body"]) for r in self.got(path)]

    def wait_for(self, path, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.got(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.got(path)


def webhook(name, url, **keys):
    lines = ["[webhook.%s]" % name, "url = %s" % url]
    lines += ["%s = %s" % (k, v) for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def add_general(path, **keys):
    """Put keys into the [general] section write_config wrote."""
    with open(path) as f:
        text = f.read()
    extra = "".join("%s = %s\n" % kv for kv in keys.items())
    text = text.replace("[general]\n", "[general]\n" + extra, 1)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def spool_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(n for n in os.listdir(directory) if n.endswith(".json") and not n.startswith("."))


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH) as f:
            cls.schema = json.load(f)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pgfo-webhooks-")
        self.spool = os.path.join(self.tmp, "spool")
        self.secret_file = os.path.join(self.tmp, "webhook.key")
        with open(self.secret_file, "w") as f:
            f.write(SECRET + "\n")
        os.chmod(self.secret_file, 0o600)
        self.ports = []

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cluster(self, offset):
        c = PgCluster(standbys=1, sync_names="ANY 1 (node1)", port_offset=PORT_OFFSET + offset,
                      label="pgfo-webhooks")
        self.addCleanup(c.teardown)
        c.start()
        return c

    def receiver(self, port=None, **kw):
        port = port or free_port(taken=self.ports)
        self.ports.append(port)
        r = Receiver(port, **kw).start()
        self.addCleanup(r.stop)
        return r

    def assertValid(self, event):
        errs = schema_errors(self.schema, event)
        self.assertEqual(errs, [], json.dumps(event, indent=1))

    def assertSigned(self, request):
        h = {k.lower(): v for k, v in request["headers"].items()}
        ts = h.get("x-pgfailover-timestamp")
        sig = h.get("x-pgfailover-signature", "")
        self.assertIsNotNone(ts, h)
        self.assertLess(abs(time.time() - int(ts)), 300)
        want = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + request["body"],
                                    hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(sig, want), (sig, want))

    def assertRunSequence(self, events, run_id):
        """One run: one run id, seq 1, 2, 3, ..., started .. succeeded."""
        self.assertTrue(events)
        self.assertEqual({e["run_id"] for e in events}, {run_id})
        self.assertEqual([e["seq"] for e in events], list(range(1, len(events) + 1)))
        self.assertEqual(events[0]["event"], "failover.started")
        self.assertEqual(events[-1]["event"], "failover.succeeded")

    # (a) -------------------------------------------------------------------
    def test_planned_stop_events_signatures_retries_spool(self):
        c = self.cluster(offset=0)
        rx = self.receiver(fail_first={"/flaky": 2})
        dead_port = free_port(taken=self.ports + [rx.port])   # nothing listens there yet
        self.ports.append(dead_port)
        dead_url = "http://127.0.0.1:%d/late" % dead_port
        extra = (webhook("all", rx.url("/all"), secret_file=self.secret_file, timeout=5) +
                 webhook("filtered", rx.url("/filtered"), events="failover.*, sync.changed") +
                 webhook("chat", rx.url("/chat"), format="slack", events="failover.*") +
                 webhook("flaky", rx.url("/flaky"), retries=3, backoff=0.05, events="failover.*") +
                 webhook("late", dead_url, retries=1, backoff=0.05, timeout=2))
        cfg = write_config(c, extra=extra)
        add_general(cfg, spool_directory=self.spool, delivery_budget=5)

        stopper = c.stop_async(0, "fast")
        time.sleep(0.03)
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        stopper.wait(120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertEqual(run.verdict["old_primary_rejoin"], "clean", run.describe())
        run_id = run.report["run_id"]

        # Everything the process waited for has arrived when it exits.
        reqs = rx.got("/all")
        events = [json.loads(r["body"]) for r in reqs]
        self.assertRunSequence(events, run_id)
        names = [(e["event"], e.get("step")) for e in events]
        expected = [("failover.started", None)]
        for s in STEPS:
            outcome = run.step(s)["outcome"]
            expected.append(("step.started", s))
            if s == "sync_standbys" and outcome == "succeeded":
                expected.append(("sync.changed", "sync_standbys"))
            expected.append(("step." + outcome, s))
        expected.append(("failover.succeeded", None))
        self.assertEqual(names, expected, run.describe())
        self.assertIn(("sync.changed", "sync_standbys"), names)  # 'ANY 1 (node1)' -> ''
        self.assertNotIn("failover.needs_rewind", [n for n, _ in names])
        for e, r in zip(events, reqs):
            self.assertValid(e)
            self.assertSigned(r)
            self.assertEqual(e["cluster"], "it%d" % c.ports[0])
            self.assertEqual(r["headers"].get("X-Pgfailover-Event"), e["event"])
        # Payload contents: nodes, LSNs, timeline, durations.
        by = {(e["event"], e.get("step")): e for e in events}
        self.assertEqual(by[("failover.started", None)]["nodes"]["candidate"],
                         {"id": 1, "host": "127.0.0.1", "port": c.ports[1]})
        rc = by[("step.succeeded", "read_checkpoint")]
        self.assertEqual(rc["checkpoint_end"], run.verdict["checkpoint_end"])
        self.assertIsInstance(rc["timeline"], int)
        vf = by[("step.succeeded", "verify")]
        self.assertEqual(vf["switch_point"], run.verdict["switch_point"])
        self.assertEqual(vf["timeline"], run.verdict["new_timeline"])
        sc = by[("sync.changed", "sync_standbys")]
        self.assertEqual((sc["before"], sc["after"]), ("ANY 1 (node1)", ""))
        self.assertEqual(sc["severity"], "warning")
        done = by[("failover.succeeded", None)]
        self.assertEqual(done["outcome"], "succeeded")
        self.assertGreater(done["duration_s"], 0)
        self.assertEqual(done["code"], "PGFO_OK")

        # The filter.
        filtered = rx.events("/filtered")
        self.assertEqual([e["event"] for e in filtered],
                         ["failover.started", "sync.changed", "failover.succeeded"])
        for r in rx.got("/filtered"):
            self.assertNotIn("X-Pgfailover-Signature", r["headers"])  # no secret, no signature

        # Slack / Mattermost: one readable line.
        chat = rx.events("/chat")
        self.assertEqual(len(chat), 2)
        for body in chat:
            self.assertEqual(list(body), ["text"])
            self.assertNotIn("\n", body["text"])
        self.assertIn("failover.succeeded", chat[1]["text"])
        self.assertIn("[it%d]" % c.ports[0], chat[1]["text"])

        # Retries after 500: two failures, then everything, in order.
        flaky_all = rx.got("/flaky", status=None)
        self.assertEqual([r["status"] for r in flaky_all[:3]], [500, 500, 200])
        self.assertEqual([json.loads(r["body"])["event"] for r in rx.got("/flaky")],
                         ["failover.started", "failover.succeeded"])

        # The refused endpoint: nothing arrived, every event is in the spool.
        files = spool_files(self.spool)
        self.assertEqual(len(files), len(events), files)
        self.assertTrue(all(f.endswith("-late.json") for f in files), files)
        for f in files:
            self.assertEqual(os.stat(os.path.join(self.spool, f)).st_mode & 0o777, 0o600)
        self.assertIn("spooled", run.stderr)
        self.assertNotIn(SECRET, run.stderr)

        # Next invocation (a dry run) with the endpoint up: the spooled events
        # arrive first, oldest first, then the dry run's own; the spool empties.
        late = self.receiver(port=dead_port)
        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, dry_run=True)
        self.assertEqual(again.rc, 0, again.describe())
        got = late.events("/late")
        old = [e for e in got if e["run_id"] == run_id]
        new = [e for e in got if e["run_id"] == again.report["run_id"]]
        self.assertEqual(len(old) + len(new), len(got))
        self.assertEqual(got[:len(old)], old, "spooled events must come first")
        self.assertEqual(old, events, "the spooled events are the first run's, complete and in order")
        self.assertEqual(new[0]["event"], "failover.started")
        self.assertTrue(new[0]["dry_run"])
        self.assertEqual(new[-1]["event"], "failover.succeeded")
        self.assertEqual(spool_files(self.spool), [])
        print("\n  planned stop: %d events per endpoint; %d spooled and redelivered on the next run"
              % (len(events), len(old)))

    # (b) -------------------------------------------------------------------
    def crash_failover(self, offset, extra):
        c = self.cluster(offset=offset)
        cfg = write_config(c, on_unclean="promote", extra=extra)
        add_general(cfg, spool_directory=self.spool, delivery_budget=BUDGET)
        c.psql(0, "CREATE TABLE t AS SELECT generate_series(1, 1000) i")
        c.stop(0, "immediate")
        run = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0, timeout=120)
        self.assertEqual(run.rc, 0, run.describe())
        self.assertTrue(run.verdict["promoted"])
        self.assertEqual(c.psql_value(1, "SELECT pg_is_in_recovery()"), "f")
        return c, run

    def test_needs_rewind_and_hanging_endpoint_within_budget(self):
        rx = self.receiver()
        # Without a slow endpoint.
        _, base = self.crash_failover(20, webhook("ok", rx.url("/ok"), secret_file=self.secret_file))
        events = rx.events("/ok")
        self.assertRunSequence(events, base.report["run_id"])
        for e in events:
            self.assertValid(e)
        rewind = [e for e in events if e["event"] == "failover.needs_rewind"]
        self.assertEqual(len(rewind), 1, [e["event"] for e in events])
        self.assertEqual(rewind[0]["severity"], "warning")
        self.assertEqual(rewind[0]["old_primary_rejoin"], "needs_rewind")
        self.assertEqual(rewind[0]["nodes"]["old_primary"]["id"], 0)
        self.assertEqual(events[-2]["event"], "failover.needs_rewind")  # right before the end
        self.assertEqual(spool_files(self.spool), [])

        # The same failover with an endpoint that hangs for 30 s.
        _, slow = self.crash_failover(40, webhook("ok", rx.url("/ok2")) +
                                      webhook("hang", rx.url("/hang"), timeout=20, retries=0))
        hung = rx.got("/hang")
        self.assertGreaterEqual(len(hung), 1)       # it was tried and did not answer
        self.assertRunSequence(rx.events("/ok2"), slow.report["run_id"])  # the other one is unaffected
        print("\n  pgfailover total time: %.2f s without a slow endpoint, %.2f s with one hanging "
              "(delivery_budget %.1f s); failover itself %.3f s vs %.3f s"
              % (base.elapsed, slow.elapsed, BUDGET, base.report["duration_s"],
                 slow.report["duration_s"]))
        for label, r in (("without", base), ("with", slow)):
            print("  steps %s: %s" % (label, ", ".join("%s %.3f" % (s["name"], s["duration_s"])
                                                      for s in r.report["steps"])))
        self.assertLess(slow.elapsed, base.elapsed + BUDGET + 2.0, slow.describe())
        # The only wait the hanging endpoint causes is the budget at exit ...
        self.assertLess(slow.elapsed - slow.report["duration_s"], BUDGET + 1.0, slow.describe())
        # ... and the failover itself is not slowed down (the promote step
        # alone varies by up to a second from run to run, webhooks or not).
        self.assertLess(slow.report["duration_s"], base.report["duration_s"] + 1.5, slow.describe())
        # What the hanging endpoint did not take is spooled for the next run.
        files = spool_files(self.spool)
        self.assertTrue(files and all(f.endswith("-hang.json") for f in files), files)
        self.assertEqual(len(files), len(rx.events("/ok2")))


    # (c) -------------------------------------------------------------------
    def test_rerun_after_failover_and_follow_reports_already(self):
        c = self.cluster(offset=60)
        rx = self.receiver()
        cfg = write_config(c, extra="[replication]\nsynchronous_standby_names = ANY 1 (node0, node1)\n" +
                           webhook("ok", rx.url("/rerun"), secret_file=self.secret_file))
        add_general(cfg, spool_directory=self.spool, delivery_budget=BUDGET)
        c.stop_async(0, "fast")
        time.sleep(0.03)
        first = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(first.rc, 0, first.describe())
        self.assertEqual(first.verdict["old_primary_rejoin"], "clean", first.describe())
        c.wait_stopped(0)
        fol = start_cli(["follow-primary"] + pgpool_args(c, 0, 1, 0), cfg).wait(180)
        self.assertEqual(fol.rc, 0, fol.describe())
        self.assertEqual(c.psql_value(0, "SELECT pg_is_in_recovery()"), "t")
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0)")   # restored by follow-primary

        again = failover_hook(c, cfg, failed=0, new_main=1, old_primary=0)
        self.assertEqual(again.rc, 0, again.describe())
        # The old primary is a synchronous standby again: the re-run keeps it one.
        self.assertEqual(c.sync_standby_names(1), "ANY 1 (node0)", again.describe())
        v = again.verdict
        self.assertFalse(v["promoted"], again.describe())
        self.assertTrue(v["already_primary"], again.describe())
        self.assertEqual(v["old_primary_rejoin"], "already", again.describe())
        self.assertNotIn("needs pg_rewind", again.report["message"])
        self.assertIn("already", again.step("verify")["summary"], again.describe())
        events = [e for e in rx.events("/rerun") if e["run_id"] == again.report["run_id"]]
        self.assertRunSequence(events, again.report["run_id"])
        for e in events:
            self.assertValid(e)
        names = [e["event"] for e in events]
        self.assertNotIn("failover.needs_rewind", names)
        self.assertEqual(events[-1]["old_primary_rejoin"], "already")
        self.assertNotIn("sync.changed", names)


if __name__ == "__main__":
    unittest.main(verbosity=2)

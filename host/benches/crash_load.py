#!/usr/bin/env python3
"""Crash and replica driver for host/benches/crash_recovery.sh and two_replicas.sh.

Starts `patron serve` processes itself (so it can SIGKILL and restart them at chosen
moments), posts a steady rate of writes to them, records every write a server
acknowledged (2xx) with its ids, then lets the jobs drain and checks, in the database,
that every acknowledged event, order, refund and point is there exactly once.

Writes (op i of the run, kind drawn from a seeded RNG):
  events  a batch of EVENTS_PER_BATCH anonymous `product_view`/`page_view` events,
          ids `e-<run>-<i>-<k>`; acknowledged = 200 with each event `accepted` or
          `duplicate` (a retry of a batch that landed before a kill).
  order   a paid order `o-<run>-<i>` of customer `c-<run>-<n>` (CUSTOMERS of them), one
          line, total 10.00-500.00; acknowledged = 200/201.
  refund  two partial refunds (`r-<run>-<i>-a` and `-b`, a quarter of the total each)
          of one acknowledged order, posted at the same moment (to both replicas in
          replica mode); acknowledged = 200.
A write that gets no answer (the server died under it), a 5xx or a 429 is retried with
the same ids (to the other replica in replica mode) until it is acknowledged: a store's
back end retries like this, so a write that landed before a kill and is posted again
must still count once. Any other 4xx is a violation.

Checks, after the load and the drain (no job due, queued or running; none failed):
  - every acknowledged event id is stored (exactly once: the key is (shop, event id));
  - every acknowledged order is stored once with its total; its `refunded` is the sum
    of its refund rows, which are exactly the acknowledged refunds (and no other);
  - each customer row is unique by external id and its order_count/total_spent are
    those of its stored purchases;
  - the ledger balances: each customer's points_balances.balance = SUM(ledger delta),
    and no balance is negative;
  - each stored purchase has exactly one `earn` row (idempotency key, order id), of
    total // 100 points (single tier, 1 point per unit), or, if a refund was stored
    before the order's delayed job ran (ARCHITECTURE.md, scheduler), of the net total
    at that time; its `reverse` rows sum to earned * refunded // total (the host's
    proportional reversal) when it earned on the full total, else at most what it earned;
  - the loyalty plugin heard each placement and each refund once (order_hook_runs), and
    every `order.loyalty` job is done.
Exit status 1 on any violation, each one printed.
"""

import argparse
import http.server
import ctypes
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict

EVENTS_PER_BATCH = 5
REQUEST_TIMEOUT = 10.0
# The delivery worker's lease of a message it sends (DeliveryConfig::default).
OUTBOX_LEASE_MS = 5 * 60 * 1000


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def die_with_parent():
    """preexec_fn: the child gets SIGKILL if this driver dies, so no server outlives it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Replica:
    """One `patron serve` on 127.0.0.1:port, restartable; every pid it had is kept."""

    def __init__(self, index, binary, port, env, log_path):
        self.index, self.binary, self.port, self.env, self.log_path = index, binary, port, env, log_path
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None
        self.pids = []
        self.up = threading.Event()

    def start(self):
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== start at {time.time():.3f}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [self.binary, "--listen", f"127.0.0.1:{self.port}", "serve"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pids.append(self.proc.pid)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"replica {self.index} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/ready", timeout=2) as response:
                    if response.status == 200:
                        self.up.set()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"replica {self.index} did not get ready in 60 s; see {self.log_path}")

    def kill(self):
        self.up.clear()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


class Database:
    """Read-only queries on the run's database: SQLite through the sqlite3 module, or
    PostgreSQL through psql (stdlib only)."""

    def __init__(self, database_url, sqlite_path):
        self.url, self.path = database_url, sqlite_path

    def rows(self, sql):
        if self.url:
            out = subprocess.run(["psql", "-qAtX", "-F", "\t", self.url, "-v", "ON_ERROR_STOP=1", "-c", sql],
                                 check=True, capture_output=True, text=True).stdout
            return [tuple(None if v == "" else v for v in line.split("\t")) for line in out.splitlines()]
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return [tuple(None if v is None else str(v) for v in row) for row in connection.execute(sql)]
        finally:
            connection.close()

    def execute(self, sql):
        """A write (the lease fast-forward of a dead worker's jobs)."""
        if self.url:
            subprocess.run(["psql", "-qAtX", self.url, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                           capture_output=True, text=True)
            return
        connection = sqlite3.connect(self.path, timeout=30)
        try:
            connection.execute(sql)
            connection.commit()
        finally:
            connection.close()


class Journal:
    """What the servers acknowledged, and the driver's own counters."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.file = open(path, "w")
        self.events = set()
        self.orders = {}  # id -> (customer external id, total)
        self.refunds = {}  # id -> (order id, amount)
        self.refundable = []  # acknowledged orders not yet picked for refunds
        self.unacknowledged = []  # writes given up on (may or may not be stored)
        self.violations = []
        self.requests = Counter()
        self.in_flight = 0

    def record(self, kind, **fields):
        with self.lock:
            self.file.write(json.dumps({"kind": kind, **fields}) + "\n")
            if kind == "event":
                self.events.update(fields["ids"])
            elif kind == "order":
                self.orders[fields["id"]] = (fields["customer"], fields["total"])
                self.refundable.append(fields["id"])
            elif kind == "refund":
                self.refunds[fields["id"]] = (fields["order"], fields["amount"])

    def violation(self, message):
        with self.lock:
            self.violations.append(message)
        log(f"VIOLATION: {message}")

    def take_refundable(self, rng):
        with self.lock:
            if not self.refundable:
                return None
            return self.refundable.pop(rng.randrange(len(self.refundable)))


class Sink:
    """A webhook receiver on 127.0.0.1: every delivery's `webhook-id` (the outbox id) and
    when it arrived."""

    def __init__(self):
        receipts, lock = defaultdict(list), threading.Lock()
        self.receipts, self.lock = receipts, lock

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with lock:
                    receipts[self.headers.get("webhook-id")].append(time.time())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Driver:
    def __init__(self, args, replicas, journal):
        self.args, self.replicas, self.journal = args, replicas, journal
        self.run = args.run_id
        self.stop_new = threading.Event()
        self.give_up_at = None  # set when the load ends: retries stop then + RETRY_GRACE

    def post(self, replica_index, path, body, secret):
        """POSTs until acknowledged; returns (status, json) or None if given up. Each
        failed attempt moves to the next replica."""
        data = json.dumps(body).encode()
        n = len(self.replicas)
        attempt = 0
        while True:
            replica = self.replicas[(replica_index + attempt) % n]
            attempt += 1
            headers = {"Content-Type": "application/json"}
            if secret:
                headers["Authorization"] = f"Bearer {self.args.secret}"
            request = urllib.request.Request(replica.base + path, data=data, headers=headers, method="POST")
            status, payload = None, None
            with self.journal.lock:
                self.journal.in_flight += 1
            try:
                with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                    status, payload = response.status, json.loads(response.read() or b"null")
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()[:500].decode(errors="replace")
            except (urllib.error.URLError, OSError, ValueError):
                status = None  # connection refused or reset, timeout: the server died (or is dying)
            finally:
                with self.journal.lock:
                    self.journal.in_flight -= 1
                    self.journal.requests[status or "no answer"] += 1
            if status is not None and 200 <= status < 300:
                return status, payload
            if status is not None and 400 <= status < 500 and status != 429:
                self.journal.violation(f"POST {path} {body.get('id', '')} answered {status}: {payload}")
                return None
            if self.give_up_at is not None and time.time() > self.give_up_at:
                return None
            time.sleep(0.2 if status is None else 0.5)

    def put(self, path, body):
        request = urllib.request.Request(self.replicas[0].base + path, data=json.dumps(body).encode(), method="PUT",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.args.secret}"})
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status

    def journeys_setup(self, sink):
        """The journeys' messages go to the sink at once: the shop's `email` channel is a
        webhook to it; no quiet hours, caps or holdout hold them back."""
        self.put("/v1/contact-policy", {"quiet_hours_start": "00:00", "quiet_hours_end": "00:00",
                                        "holdout_percent": 0, "max_per_7_days": 1000, "min_hours_between": 0})
        self.put("/v1/channels/email", {"kind": "webhook", "url": sink.url})

    def events(self, i, rng):
        ids = [f"e-{self.run}-{i}-{k}" for k in range(EVENTS_PER_BATCH)]
        body = {
            "anonymous_id": f"a-{self.run}-{rng.randrange(500)}",
            "events": [{"id": e, "kind": rng.choice(["product_view", "page_view"]),
                        "url": f"https://shop.test/p/{rng.randrange(50)}",
                        "properties": {"product_id": f"p{rng.randrange(50)}"}} for e in ids],
        }
        answer = self.post(i, f"/v1/events?key={self.args.publishable}", body, secret=False)
        if answer is None:
            self.journal.unacknowledged.append(("events", ids[0]))
            return
        results = answer[1].get("results", [])
        stored = [r["id"] for r in results if r.get("status") in ("accepted", "duplicate")]
        if sorted(stored) != sorted(ids):
            self.journal.violation(f"event batch {ids[0]}: not all accepted: {answer[1]}")
        self.journal.record("event", ids=stored)

    def order(self, i, rng):
        customer = f"c-{self.run}-{rng.randrange(self.args.customers)}"
        unit_price, quantity = rng.randrange(1_000, 50_000), rng.randrange(1, 4)
        order_id = f"o-{self.run}-{i}"
        body = {
            "id": order_id,
            "customer": {"external_id": customer, "email": f"{customer}@shop.test", "first_name": "Crash",
                         "marketing_consent": True},
            "status": "paid",
            "lines": [{"product_id": f"p{rng.randrange(50)}", "title": "Tea", "quantity": quantity,
                       "unit_price": unit_price}],
        }
        answer = self.post(i, "/v1/orders", body, secret=True)
        if answer is None:
            self.journal.unacknowledged.append(("order", order_id))
            return
        total = unit_price * quantity
        if answer[1].get("total") != total:
            self.journal.violation(f"order {order_id}: answered total {answer[1].get('total')}, posted {total}")
        self.journal.record("order", id=order_id, customer=customer, total=total)

    def refund(self, i, rng):
        order_id = self.journal.take_refundable(rng)
        if order_id is None:
            return self.order(i, rng)
        total = self.journal.orders[order_id][1]
        amount = total // 4

        def one(suffix, replica_index):
            refund_id = f"r-{self.run}-{i}-{suffix}"
            answer = self.post(replica_index, f"/v1/orders/{order_id}/refunds", {"id": refund_id, "amount": amount},
                               secret=True)
            if answer is None:
                self.journal.unacknowledged.append(("refund", refund_id))
            else:
                self.journal.record("refund", id=refund_id, order=order_id, amount=amount)

        # The two at the same moment, to different replicas when there are two.
        other = threading.Thread(target=one, args=("b", i + 1))
        other.start()
        one("a", i)
        other.join()

    def op(self, i):
        rng = random.Random(f"{self.run}-{i}")
        roll = rng.random()
        if roll < 0.5:
            self.events(i, rng)
        elif roll < 0.9:
            self.order(i, rng)
        else:
            self.refund(i, rng)

    def load(self):
        """Ops at a steady rate for the duration, on a pool of worker threads; returns
        once every op has been acknowledged or given up on."""
        args = self.args
        start = time.time()
        counter = iter(range(10**9))
        counter_lock = threading.Lock()
        self.ops_started = 0

        def worker():
            while True:
                with counter_lock:
                    i = next(counter)
                due = start + i / args.rate
                if due >= start + args.duration:
                    return
                delay = due - time.time()
                if delay > 0:
                    time.sleep(delay)
                with counter_lock:
                    self.ops_started += 1
                try:
                    self.op(i)
                except Exception as error:  # a bug in the driver must not pass silently
                    self.journal.violation(f"driver error in op {i}: {error!r}")

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
        for thread in threads:
            thread.start()
        return threads


def crash_schedule(args, replicas, journal, start):
    """SIGKILLs at evenly spread moments (with jitter) of the load; a kill takes the
    server down for 0.2-2 s in crash mode; in replica mode replica 1 dies at 40 % of the
    run and, with --restart, comes back at 70 %."""
    rng = random.Random(f"kills-{args.run_id}")
    kills = []
    if args.mode == "crash":
        for k in range(args.kills):
            at = start + args.duration * (k + 1) / (args.kills + 1) + rng.uniform(-0.1, 0.1) * args.duration / (
                args.kills + 1)
            time.sleep(max(0, at - time.time()))
            in_flight = journal.in_flight
            replica = replicas[0]
            pid = replica.proc.pid
            replica.kill()
            log(f"kill {k + 1}/{args.kills}: SIGKILL pid {pid} with {in_flight} requests in flight")
            kills.append({"pid": pid, "at": time.time(), "in_flight": in_flight})
            time.sleep(rng.uniform(0.2, 2.0))
            replica.start()
            log(f"restarted as pid {replica.proc.pid}")
    else:
        for k in range(args.kills):
            at = start + args.duration * (0.4 + 0.2 * k / max(1, args.kills))
            time.sleep(max(0, at - time.time()))
            replica = replicas[1]
            in_flight, pid = journal.in_flight, replica.proc.pid
            replica.kill()
            log(f"kill {k + 1}/{args.kills}: SIGKILL replica 1 (pid {pid}) with {in_flight} requests in flight")
            kills.append({"pid": pid, "at": time.time(), "in_flight": in_flight})
            if args.restart:
                time.sleep(max(0, start + args.duration * (0.7 if args.kills == 1 else 0.4 + 0.2 * (k + 0.5) /
                                                               args.kills) - time.time()))
                replica.start()
                log(f"replica 1 restarted as pid {replica.proc.pid}")
    return kills


def drain(args, db, shop_id, dead_pids, journal):
    """Waits until no job is due, queued or running. A scheduler job leased by a killed
    process keeps its 15-minute lease; its lease is cut short here (the process is dead,
    so this is the same as waiting it out). Inline order jobs (60-s leases, owner
    `inline-…`) are simply waited for."""
    if dead_pids:
        owners = " OR ".join(f"lease_owner LIKE '{pid}-%'" for pid in dead_pids)
        db.execute(f"UPDATE jobs SET lease_until = 0 WHERE status = 'running' AND ({owners})")
    deadline = time.time() + args.drain_timeout
    while True:
        now_ms = int(time.time() * 1000)
        if args.journeys:
            # A message a live worker is sending to the local sink is recorded within
            # seconds; one still `sending` 30 s into its 5-minute lease was leased by a
            # killed worker: its lease is cut short (as waiting it out would).
            db.execute(f"UPDATE outbox SET lease_until = 0 WHERE shop_id = {shop_id} AND status = 'sending' "
                       f"AND lease_until < {now_ms + OUTBOX_LEASE_MS - 30_000}")
        pending = db.rows(
            f"SELECT kind, status, COUNT(*) FROM jobs WHERE shop_id = {shop_id} AND status IN ('queued', 'running') "
            f"AND run_at <= {now_ms} GROUP BY kind, status "
            f"UNION ALL SELECT 'message', status, COUNT(*) FROM outbox WHERE shop_id = {shop_id} "
            f"AND (status = 'sending' OR (status IN ('queued', 'deferred') AND next_attempt_at <= {now_ms})) "
            f"GROUP BY status")
        if not pending:
            return True
        if time.time() > deadline:
            journal.violation(f"jobs still pending {args.drain_timeout} s after the load (stuck): {pending}")
            return False
        log(f"draining: {', '.join(f'{k} {s} {c}' for k, s, c in pending)}")
        time.sleep(5)


def verify_journeys(db, shop_id, journal, customers, jobs, kill_times):
    """A stored cause reaches the journeys plugin once: within a run no journey step is
    queued twice for one customer (welcome never re-enters, win-back after 90 days,
    post-purchase and the abandonment journeys need later timers or known shoppers'
    carts), so a trigger or timer job whose actions applied twice shows as a second
    message of one step. (A step may also be missing: a run killed after the plugin
    wrote its kv and before the host applied its actions, the kv caveat of
    ARCHITECTURE.md; that is counted, not a violation.) Every message `sent` reached the
    sink, and reached it twice only across a kill (at least once: its sender died before
    recording the send)."""
    v = journal.violation
    not_done = [j for j in jobs if j[0] in ("automation.trigger", "automation.timer") and j[1] == "running"]
    if not_done:
        v(f"{len(not_done)} automation jobs still running, e.g. {not_done[:3]}")
    by_id = {cid: external for external, (cid, _, _) in customers.items()}
    steps, statuses, sent = Counter(), Counter(), []
    for mid, cid, journey, step, status in db.rows(
            f"SELECT id, customer_id, journey, step, status FROM outbox WHERE shop_id = {shop_id}"):
        statuses[f"{journey}/{step} {status}"] += 1
        steps[(by_id.get(cid, cid), journey, step)] += 1
        if status == "sent":
            sent.append(mid)
    for (customer, journey, step), count in steps.items():
        if count > 1:
            v(f"customer {customer}: {count} messages of {journey}/{step} (a trigger or timer applied twice)")
    receipts = journal.sink.receipts
    for mid in sent:
        if not receipts.get(f"msg_{mid}"):
            v(f"message {mid} is sent but never reached the sink")
    redelivered = 0
    for webhook_id, times in receipts.items():
        if len(times) > 1:
            first, last = min(times), max(times)
            if any(first <= k <= last for k in kill_times):
                redelivered += 1
            else:
                v(f"{webhook_id} delivered {len(times)} times with no kill between")
    return {"messages": dict(statuses), "webhook_receipts": sum(len(t) for t in receipts.values()),
            "redelivered_across_a_kill": redelivered,
            "customers_messaged": len({c for c, _, _ in steps}),
            "automation_jobs": sum(1 for j in jobs if j[0] in ("automation.trigger", "automation.timer"))}


def verify(args, db, shop_id, journal, kill_times):
    v = journal.violation
    s = f"shop_id = {shop_id}"

    # Events.
    stored_events = Counter(r[0] for r in db.rows(f"SELECT event_id FROM events WHERE {s}"))
    missing = [e for e in journal.events if e not in stored_events]
    doubled = [e for e, c in stored_events.items() if c > 1]
    if missing:
        v(f"{len(missing)} acknowledged events missing, e.g. {missing[:5]}")
    if doubled:
        v(f"{len(doubled)} events stored more than once, e.g. {doubled[:5]}")

    # Orders and refunds.
    orders = {}
    for oid, customer, status, total, refunded in db.rows(
            f"SELECT o.id, c.external_id, o.status, o.total, o.refunded FROM orders o "
            f"LEFT JOIN customers c ON c.shop_id = o.shop_id AND c.id = o.customer_id WHERE o.{s}"):
        if oid in orders:
            v(f"order {oid} stored twice")
        orders[oid] = (customer, status, int(total), int(refunded))
    for oid, (customer, total) in journal.orders.items():
        if oid not in orders:
            v(f"acknowledged order {oid} missing")
            continue
        stored_customer, _status, stored_total, _ = orders[oid]
        if stored_total != total or stored_customer != customer:
            v(f"order {oid}: stored ({stored_customer}, {stored_total}), acknowledged ({customer}, {total})")
    unacked_ids = {ident for _, ident in journal.unacknowledged}
    for oid in orders:
        if oid not in journal.orders and oid not in unacked_ids:
            v(f"order {oid} stored but never posted")
    refunds = defaultdict(list)
    refund_rows = db.rows(f"SELECT id, order_id, amount FROM refunds WHERE {s}")
    stored_refund_ids = Counter(r[0] for r in refund_rows)
    for rid, oid, amount in refund_rows:
        refunds[oid].append((rid, int(amount)))
        if rid in journal.refunds and journal.refunds[rid] != (oid, int(amount)):
            v(f"refund {rid}: stored ({oid}, {amount}), acknowledged {journal.refunds[rid]}")
        if rid not in journal.refunds and rid not in unacked_ids:
            v(f"refund {rid} stored but never acknowledged")
    for rid, c in stored_refund_ids.items():
        if c > 1:
            v(f"refund {rid} stored {c} times")
    for rid in journal.refunds:
        if rid not in stored_refund_ids:
            v(f"acknowledged refund {rid} missing")
    for oid, (_, _, total, refunded) in orders.items():
        if refunded != sum(a for _, a in refunds[oid]):
            v(f"order {oid}: refunded {refunded}, its refund rows sum to {sum(a for _, a in refunds[oid])}")
        if refunded > total:
            v(f"order {oid}: refunded {refunded} > total {total}")

    # Customers and their stats.
    customers = {}
    for cid, external, count, spent in db.rows(
            f"SELECT id, external_id, order_count, total_spent FROM customers WHERE {s}"):
        if external in customers:
            v(f"customer {external} stored twice")
        customers[external] = (cid, int(count), int(spent))
    purchases = defaultdict(list)
    for oid, (customer, status, total, refunded) in orders.items():
        if status in ("paid", "fulfilled"):
            purchases[customer].append(total - refunded)
    for external, (_cid, count, spent) in customers.items():
        if (count, spent) != (len(purchases[external]), sum(purchases[external])):
            v(f"customer {external}: order_count {count}, total_spent {spent}; "
              f"its orders say {len(purchases[external])}, {sum(purchases[external])}")
    for customer, _ in journal.orders.values():
        if customer not in customers:
            v(f"customer {customer} of an acknowledged order missing")

    # The ledger.
    balances = {r[0]: int(r[1]) for r in db.rows(f"SELECT customer_id, balance FROM points_balances WHERE {s}")}
    sums = {r[0]: int(r[1]) for r in db.rows(
        f"SELECT customer_id, CAST(SUM(delta) AS BIGINT) FROM points_ledger WHERE {s} GROUP BY customer_id")}
    for cid in set(balances) | set(sums):
        if balances.get(cid, 0) != sums.get(cid, 0):
            v(f"customer id {cid}: balance {balances.get(cid, 0)} but the ledger sums to {sums.get(cid, 0)}")
        if balances.get(cid, 0) < 0:
            v(f"customer id {cid}: negative balance {balances[cid]}")
    earns, reversals = defaultdict(list), defaultdict(int)
    for oid, kind, delta in db.rows(f"SELECT order_id, kind, delta FROM points_ledger WHERE {s}"):
        if kind == "earn":
            earns[oid].append(int(delta))
        elif kind == "reverse":
            reversals[oid] += -int(delta)
        else:
            v(f"unexpected ledger row kind {kind} ({oid}, {delta})")
    late_earns = 0
    for oid, (_, _status, total, refunded) in orders.items():
        got = earns.get(oid, [])
        if len(got) != 1:
            v(f"order {oid}: {len(got)} earn rows {got} (want exactly 1)")
            continue
        earned = got[0]
        if earned == total // 100:
            want = earned * refunded // total
            if reversals[oid] != want:
                v(f"order {oid}: {reversals[oid]} points reversed, want {earned} * {refunded} // {total} = {want}")
        elif (total - refunded) // 100 <= earned < total // 100:
            late_earns += 1  # earned on the net total: a refund was stored before its delayed job ran
            if not 0 <= reversals[oid] <= earned:
                v(f"order {oid}: {reversals[oid]} points reversed of {earned} earned")
        else:
            v(f"order {oid}: earned {earned}, want {total // 100} (total {total}, refunded {refunded})")
    for oid in earns:
        if oid not in orders:
            v(f"points earned for order {oid}, which is not stored")

    # The loyalty plugin heard each change once; every order job is done.
    heard = Counter((r[0], r[1]) for r in db.rows(
        f"SELECT order_id, change_key FROM order_hook_runs WHERE {s} AND plugin = 'loyalty'"))
    for oid in orders:
        if heard[(oid, "placed")] != 1:
            v(f"order {oid}: loyalty heard its placement {heard[(oid, 'placed')]} times")
        for rid, _ in refunds[oid]:
            if heard[(oid, f"refund:{rid}")] != 1:
                v(f"refund {rid}: loyalty heard it {heard[(oid, f'refund:{rid}')]} times")
    jobs = db.rows(f"SELECT kind, status, attempts, last_error FROM jobs WHERE {s}")
    not_done = [j for j in jobs if j[0] == "order.loyalty" and j[1] != "done"]
    if not_done:
        v(f"{len(not_done)} order.loyalty jobs not done, e.g. {not_done[:3]}")
    failed = [j for j in jobs if j[1] == "failed"]
    if failed:
        v(f"{len(failed)} jobs failed, e.g. {failed[:3]}")
    taken_over = sum(1 for j in jobs if j[0] == "order.loyalty" and int(j[2]) > 1)
    figures = {}
    if args.journeys:
        figures = verify_journeys(db, shop_id, journal, customers, jobs, kill_times)
    return figures | {
        "events_stored": sum(stored_events.values()), "orders_stored": len(orders),
        "refunds_stored": len(refund_rows), "customers": len(customers),
        "ledger_rows": sum(len(e) for e in earns.values()) + sum(1 for r in reversals.values() if r),
        "points_earned": sum(sum(e) for e in earns.values()), "points_reversed": sum(reversals.values()),
        "late_earns": late_earns, "loyalty_jobs": sum(1 for j in jobs if j[0] == "order.loyalty"),
        "loyalty_jobs_run_more_than_once": taken_over,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["crash", "replicas"], required=True)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--ports", required=True, help="comma-separated; one port per replica")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--publishable", required=True)
    parser.add_argument("--shop-id", required=True)
    parser.add_argument("--rate", type=float, default=50, help="write operations per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--restart", action="store_true", help="replica mode: restart the killed replica")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--drain-timeout", type=float, default=240)
    parser.add_argument("--retry-grace", type=float, default=90,
                        help="seconds after the load during which unacknowledged writes are still retried")
    parser.add_argument("--journeys", action="store_true",
                        help="the shop has the journeys plugin: route its email to a local webhook sink and check "
                             "that triggers act once and messages arrive")
    parser.add_argument("--run-id", default=str(os.getpid()))
    parser.add_argument("--report", help="write the figures as JSON here")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PATRON_DATA_DIR"] = args.data_dir
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    # The bench is one client machine posting for a whole shop: the public endpoints'
    # per-IP and per-key limits (issue 16) are not what is measured here.
    env["PATRON_RATE_LIMIT_PER_KEY"] = "1000000"
    env["PATRON_RATE_LIMIT_PER_IP"] = "1000000"
    env.setdefault("RUST_LOG", "warn")
    if args.journeys:
        env["PATRON_WEBHOOK_ALLOW_PRIVATE"] = "true"
    ports = [int(p) for p in args.ports.split(",")]
    replicas = []
    for i, port in enumerate(ports):
        replica_env = env
        if args.mode == "replicas":
            # Replicas are separate machines: each its own data directory (plugin cache).
            replica_env = dict(env, PATRON_DATA_DIR=os.path.join(args.data_dir, f"replica-{i}"))
            os.makedirs(replica_env["PATRON_DATA_DIR"], exist_ok=True)
        replicas.append(Replica(i, args.bin, port, replica_env, os.path.join(args.data_dir, f"serve-{i}.log")))
    journal = Journal(os.path.join(args.data_dir, "acknowledged.ndjson"))
    db = Database(args.database_url, os.path.join(args.data_dir, "patron.db"))
    shop_id = int(args.shop_id)

    def on_signal(signum, _frame):
        for replica in replicas:
            replica.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        for replica in replicas:
            replica.start()
        log(f"{len(replicas)} replica(s) ready on {args.ports}; {args.rate:g} writes/s for {args.duration:g} s, "
            f"{args.kills} kill(s), {args.workers} client threads")
        driver = Driver(args, replicas, journal)
        journal.sink = None
        if args.journeys:
            journal.sink = Sink()
            driver.journeys_setup(journal.sink)
        start = time.time()
        threads = driver.load()
        kills = crash_schedule(args, replicas, journal, start)
        time.sleep(max(0, start + args.duration - time.time()))
        driver.give_up_at = time.time() + args.retry_grace
        for thread in threads:
            thread.join()
        elapsed = time.time() - start
        log(f"load done in {elapsed:.1f} s: {driver.ops_started} ops; responses {dict(journal.requests)}; "
            f"{len(journal.unacknowledged)} given up")
        if journal.unacknowledged:
            journal.violation(f"{len(journal.unacknowledged)} writes never acknowledged after "
                              f"{args.retry_grace:g} s of retries, e.g. {journal.unacknowledged[:5]}")
        dead_pids = [pid for replica in replicas for pid in replica.pids
                     if pid != (replica.proc.pid if replica.proc.poll() is None else None)]
        drained_at = time.time()
        drain(args, db, shop_id, dead_pids, journal)
        log(f"drained in {time.time() - drained_at:.1f} s")
        figures = verify(args, db, shop_id, journal, [k["at"] for k in kills])
    finally:
        for replica in replicas:
            replica.stop()
    report = {
        "mode": args.mode, "backend": "PostgreSQL" if args.database_url else "SQLite", "replicas": len(replicas),
        "rate": args.rate, "duration_s": args.duration, "ops": driver.ops_started, "kills": len(kills),
        "kill_in_flight": [k["in_flight"] for k in kills],
        "acknowledged": {"events": len(journal.events), "orders": len(journal.orders),
                         "refunds": len(journal.refunds)},
        "responses": {str(k): n for k, n in journal.requests.items()},
        "stored": figures, "violations": len(journal.violations),
    }
    print(json.dumps(report, indent=2))
    if args.report:
        with open(args.report, "w") as out:
            json.dump(report, out, indent=2)
    if journal.violations:
        log(f"FAILED: {len(journal.violations)} violation(s)")
        for message in journal.violations[:50]:
            print(f"  - {message}")
        sys.exit(1)
    log("OK: every acknowledged write is stored exactly once; the ledger balances")


if __name__ == "__main__":
    main()

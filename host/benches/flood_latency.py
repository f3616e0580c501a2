"""An event flood from one shop's publishable key against another shop's order latency.

Driven by host/benches/flood_latency.sh: posts `--orders` paid orders one after
another to the quiet shop (secret key) and records each latency, first with the server
idle, then while `--flooders` threads post event batches as fast as they can with the
flooding shop's publishable key. Prints the statuses the flood got (429s expected), the
order latencies' p50/p99 idle and under the flood, and their ratios; exits 1 if the flood
got no 429 or an order failed. Python 3 standard library only; 127.0.0.1 only.
"""

import argparse
import http.client
import json
import threading
import time
from collections import Counter


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def post(conn, path, body, headers):
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json", **headers})
    response = conn.getresponse()
    response.read()
    return response.status


def orders(port, secret, prefix, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, failures = [], 0
    for n in range(count):
        order = {
            "id": f"{prefix}-{n}", "status": "paid",
            "customer": {"external_id": f"quiet-{n % 100}", "email": f"quiet-{n % 100}@example.com"},
            "lines": [{"product_id": "p1", "title": "Tea", "quantity": 1, "unit_price": 1500}],
        }
        started = time.perf_counter()
        status = post(conn, "/v1/orders", order, {"authorization": f"Bearer {secret}"})
        latencies.append((time.perf_counter() - started) * 1000)
        failures += status not in (200, 201)
    return latencies, failures


def flood(port, key, stop, statuses, lock):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = 0
    while not stop.is_set():
        batch = {"anonymous_id": f"flood-{threading.get_ident()}",
                 "events": [{"id": f"f-{threading.get_ident()}-{n}-{i}", "kind": "page_view",
                             "url": "http://flood.test/"} for i in range(50)]}
        n += 1
        try:
            status = post(conn, f"/v1/events?key={key}", batch, {})
        except (OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            status = "error"
        with lock:
            statuses[status] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--flood-key", required=True)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--flooders", type=int, default=8)
    args = parser.parse_args()

    orders(args.port, args.secret, "warm", 20)
    idle, idle_failures = orders(args.port, args.secret, "idle", args.orders)

    stop, lock, statuses = threading.Event(), threading.Lock(), Counter()
    threads = [threading.Thread(target=flood, args=(args.port, args.flood_key, stop, statuses, lock))
               for _ in range(args.flooders)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    flood_started = time.perf_counter()
    with lock:
        before = sum(statuses.values())
    flooded, flooded_failures = orders(args.port, args.secret, "flood", args.orders)
    with lock:
        during = sum(statuses.values()) - before
    rate = during / (time.perf_counter() - flood_started)
    stop.set()
    for thread in threads:
        thread.join()

    p = lambda values: (percentile(values, 0.5), percentile(values, 0.99))
    (idle50, idle99), (flood50, flood99) = p(idle), p(flooded)
    print(f"flood: {rate:.0f} requests/s of 50 events from {args.flooders} threads, statuses {dict(statuses)}")
    print(f"orders idle:  p50 {idle50:.2f} ms  p99 {idle99:.2f} ms  ({args.orders} orders, {idle_failures} failed)")
    print(f"orders flood: p50 {flood50:.2f} ms  p99 {flood99:.2f} ms  ({args.orders} orders, {flooded_failures} failed)")
    print(f"ratio under flood: p50 {flood50 / idle50:.2f}x  p99 {flood99 / idle99:.2f}x  (target <= 2x)")
    if statuses.get(429, 0) == 0 or idle_failures or flooded_failures:
        print("FAILED: the flood got no 429, or an order failed")
        raise SystemExit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The seed's stress test, rewritten as r2-bench's baseline.

It works the way `iotdemo_stress_test.py` (shared/seed/IoT-Demo-Stress-Test.md)
does: the parent loads one sentant per device with plain HTTP POSTs and sets a
random initial sensor value, then starts ONE OS PROCESS PER DEVICE
(`multiprocessing.Process`, forked, started in shuffled order); each process
sweeps from a random colour to another in 20 steps, sending `set_sensor` then
`update` and sleeping a random 0.3 to 0.3 x speed seconds (speed 1..5) after
each step. Where the seed makes one sweep per process, this one sweeps again
until the run's duration is over, so that it runs as long as the page's
`sweep` scenario. Values are floored to integers (the parameter is declared
`integer` and the sensor page floors `alpha`). It opens no websocket.

Differences from the seed, all on purpose:
- names are `<prefix>NNNN` (given by r2-bench), never `device NNNN`, and the
  sentants are unloaded by id at the end, never by name;
- stdlib only (`urllib.request`, one new connection per request, as a plain
  `requests.post` without a session does), with the Python client's body
  shape: a form with the fields `query` and `variables` (JSON text); given an
  `https://` URL, each request makes a new TCP connection and TLS handshake
  and does not verify the certificate, as the seed's `verify=False` does;
- it counts what it did and prints it as JSON lines on stdout:
  `{"phase": "loaded"}`, `{"phase": "running"}`, `{"phase": "stopped"}`, and
  last `{"phase": "done", ...figures}`.

Intended requests: for each device, the steps its own sleep schedule would
fit into the duration if every request took no time, two requests each.

Usage: baseline.py --url http://127.0.0.1:PORT --devices N --duration S --seed K --prefix P
"""

import argparse
import json
import multiprocessing
import random
import resource
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SENTANT_LOAD = "mutation SentantLoad($definition: String!) { sentantLoad(definition: $definition) { id name } }"
SENTANT_UNLOAD = "mutation SentantUnload($id: UUID4!) { sentantUnload(id: $id) { id name } }"
SENTANT_SEND = (
    "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json, $passthrough: Json) "
    "{ sentantSend(id: $id, event: $event, parameters: $parameters, passthrough: $passthrough) { id name } }"
)

STEPS = 20
PAUSE_S = 0.3
TIMEOUT_S = 10.0


def definition(name):
    """The seed's device sentant (the WebApp's), named `name`."""
    return json.dumps({"sentant": {"name": name, "automations": [{"name": "counter", "transitions": [
        {"event": "init", "actions": [
            {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "name", "value": name}},
            {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": 0}}]},
        {"event": "set_sensor", "public": True, "parameters": {"sensor": "integer"}, "actions": [
            {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor", "value": "__sensor__"}}]},
        {"event": "update", "public": True, "actions": [
            {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "sensor"}},
            {"command": "get", "plugin": "ai.reality2.vars", "parameters": {"key": "name"}},
            {"command": "send", "parameters": {"event": "update", "to": "view"}},
            {"command": "signal", "public": True, "parameters": {"event": "update"}}]}]}]}})


def graphql(url, query, variables):
    """POSTs a form body like the Python client; the field `data` of the answer.

    Raises on a transport error, a non-JSON answer or GraphQL errors."""
    body = urllib.parse.urlencode({"query": query, "variables": json.dumps(variables)}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    # `verify=False`: the node's certificate is self-signed.
    context = ssl._create_unverified_context() if url.startswith("https:") else None
    with urllib.request.urlopen(request, timeout=TIMEOUT_S, context=context) as response:
        answer = json.loads(response.read())
    if answer.get("errors"):
        raise RuntimeError(answer["errors"][0].get("message", "error"))
    return answer["data"]


def send(url, sentant_id, event, parameters):
    graphql(url, SENTANT_SEND, {
        "id": sentant_id, "event": event,
        "parameters": json.dumps(parameters), "passthrough": "{}"})


def sweep_steps(rng):
    """One sweep as the seed's `do_in_parallel` draws it: (value, pause) x 20."""
    speed = rng.randint(1, 5)
    start = rng.randint(0, 360)
    target = rng.randint(0, 360)
    for count in range(STEPS):
        value = target if count == STEPS - 1 else start + count * (target - start) / STEPS
        yield int(value), rng.uniform(PAUSE_S, PAUSE_S * speed)


def device_process(url, sentant_id, seed, index, start, duration, counters):
    """One device: sweeps until the duration is over, then adds its counts."""
    rng = random.Random(seed * 1_000_003 + index)
    end = start + duration
    ok = failed = intended = 0
    ideal = 0.0  # the step's time if every request took no time
    while True:
        for value, pause in sweep_steps(rng):
            if ideal < duration:
                intended += 2
            if time.time() < end:
                for event, parameters in (("set_sensor", {"sensor": value}), ("update", {})):
                    try:
                        send(url, sentant_id, event, parameters)
                        ok += 1
                    except (OSError, ValueError, RuntimeError, KeyError):
                        failed += 1
                left = end - time.time()
                if left > 0:
                    time.sleep(min(pause, left))
            ideal += pause
            if ideal >= duration and time.time() >= end:
                with counters["lock"]:
                    counters["ok"].value += ok
                    counters["failed"].value += failed
                    counters["intended"].value += intended
                return


def say(phase, **figures):
    print(json.dumps({"phase": phase, **figures}), flush=True)


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the node, http://HOST:PORT")
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds of sweeping")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prefix", required=True, help="sentant names are PREFIX + NNNN")
    args = parser.parse_args()
    if not args.prefix or args.prefix.startswith("device "):
        parser.error("--prefix must not make `device NNNN` names")
    url = args.url.rstrip("/") + "/reality2"
    rng = random.Random(args.seed)

    ids = []
    load_errors = []
    for index in range(args.devices):
        name = "%s%04d" % (args.prefix, index)
        try:
            ids.append(graphql(url, SENTANT_LOAD, {"definition": definition(name)})["sentantLoad"]["id"])
            send(url, ids[-1], "set_sensor", {"sensor": rng.randint(0, 360)})
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
            load_errors.append("%s: %s" % (name, error))
    say("loaded", devices_created=len(ids))

    counters = {
        "lock": multiprocessing.Lock(),
        "ok": multiprocessing.RawValue("q", 0),
        "failed": multiprocessing.RawValue("q", 0),
        "intended": multiprocessing.RawValue("q", 0),
    }
    order = list(range(len(ids)))
    rng.shuffle(order)
    start = time.time()
    say("running")
    workers = []
    for index in order:
        worker = multiprocessing.Process(
            target=device_process,
            args=(url, ids[index], args.seed, index, start, args.duration, counters))
        worker.start()
        workers.append(worker)
    for worker in workers:
        worker.join()
    ran_s = time.time() - start
    workers_cpu_s = cpu_seconds(resource.RUSAGE_CHILDREN)
    children_max_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    say("stopped")

    deleted = 0
    for sentant_id in ids:
        try:
            graphql(url, SENTANT_UNLOAD, {"id": sentant_id})
            deleted += 1
        except (OSError, ValueError, RuntimeError, KeyError) as error:
            load_errors.append("unload %s: %s" % (sentant_id, error))
    say("done",
        devices_requested=args.devices,
        devices_created=len(ids),
        devices_deleted=deleted,
        processes=len(workers),
        sends_ok=counters["ok"].value,
        sends_failed=counters["failed"].value,
        requests_intended=counters["intended"].value,
        ran_s=ran_s,
        workers_cpu_s=workers_cpu_s,
        driver_cpu_s=cpu_seconds(resource.RUSAGE_SELF),
        children_max_rss_kb=children_max_rss_kb,
        errors=load_errors[:5],
        python=sys.version.split()[0])


if __name__ == "__main__":
    main()

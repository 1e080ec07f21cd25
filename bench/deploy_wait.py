#!/usr/bin/env python3
"""Deploys a build and waits for the deployment to be final, as an API client
does: the POST, then the deployment's live log (server-sent events) until its
`end` event, which carries the final status. Prints the seconds from sending
the POST to that event (measured inside this process: neither the process's
start nor the bench's shell is counted), then the deployment's final record
as JSON on the next line.

  deploy_wait.py HTTP_PORT TOKEN APP RELEASE BUILD STAGE
"""
import http.client
import json
import sys
import time


def main():
    port, token, app, release, build, stage = sys.argv[1:7]
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    path = f"/api/v1/applications/{app}/releases/{release}/builds/{build}/deploy"
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=600)
    conn.request("POST", path, body=json.dumps({"stage": stage}), headers=headers)
    res = conn.getresponse()
    body = res.read()
    if res.status != 202:
        sys.exit(f"deploy answered HTTP {res.status}: {body.decode(errors='replace')}")
    dep_id = json.loads(body)["id"]
    conn.request("GET", f"/api/v1/deployments/{dep_id}/log",
                 headers={**headers, "Accept": "text/event-stream"})
    stream = conn.getresponse()
    if stream.status != 200:
        sys.exit(f"the live log answered HTTP {stream.status}")
    event = ""
    for _ in range(10_000_000):  # bounded: a deployment's log is far shorter
        line = stream.readline()
        if not line:
            sys.exit(f"the live log of deployment {dep_id} ended without its end event")
        line = line.decode(errors="replace").rstrip("\r\n")
        if line.startswith("event:"):
            event = line[len("event:"):].strip()
        elif line.startswith("data:") and event == "end":
            break
    t1 = time.perf_counter()
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
    conn.request("GET", f"/api/v1/deployments/{dep_id}", headers=headers)
    final = conn.getresponse().read().decode()
    print(f"{t1 - t0:.4f}")
    print(json.dumps(json.loads(final), separators=(",", ":")))


if __name__ == "__main__":
    main()

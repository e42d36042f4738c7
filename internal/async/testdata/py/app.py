import json, time

def handler(event, context):
    e = event if isinstance(event, dict) else {}
    # One line per attempt that tests can find by request id and marker.
    print("RUN " + context.aws_request_id + " " + str(e.get("mark", "")))
    if e.get("echo") or "requestContext" in e:
        print("EVENT " + json.dumps(event))
    if e.get("sleep"):
        time.sleep(float(e["sleep"]))
    if e.get("fail"):
        raise ValueError("asked to fail: " + str(e["fail"]))
    return {"ok": True, "mark": e.get("mark")}

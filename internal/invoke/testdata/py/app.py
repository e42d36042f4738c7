import os, time, uuid

SANDBOX = str(uuid.uuid4())  # identifies this execution environment
CALLS = {"n": 0}

def handler(event, context):
    CALLS["n"] += 1
    start = time.time()
    e = event if isinstance(event, dict) else {}
    if e.get("print"):
        print(e["print"])
    if e.get("sleep"):
        time.sleep(float(e["sleep"]))
    if e.get("raise"):
        raise ValueError("asked to fail: " + str(e["raise"]))
    if e.get("exit") is not None:
        os._exit(int(e["exit"]))
    if e.get("alloc_mb"):
        blob = bytearray(int(e["alloc_mb"]) * 1024 * 1024)
        for i in range(0, len(blob), 4096):
            blob[i] = 1
    if e.get("grow_mb"):
        held = []
        for _ in range(int(e["grow_mb"])):
            held.append(bytearray(b"\1" * (1024 * 1024)))
    if e.get("big_mb"):
        return "x" * int(float(e["big_mb"]) * 1024 * 1024)
    return {
        "event": event,
        "sandbox": SANDBOX,
        "calls": CALLS["n"],
        "start": start,
        "end": time.time(),
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": int(context.memory_limit_in_mb),
        "invoked_arn": context.invoked_function_arn,
        "greeting": os.environ.get("GREETING"),
        "client_context": getattr(context, "client_context", None) is not None,
    }

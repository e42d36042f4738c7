# A function for the CLI tests: echoes its event, prints or raises on request.
def handler(event, context):
    e = event if isinstance(event, dict) else {}
    if e.get("print"):
        print(e["print"])
    if e.get("raise"):
        raise ValueError(e["raise"])
    return {"event": event, "request_id": context.aws_request_id}

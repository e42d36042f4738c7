"""Ignis Python bootstrap: a Lambda Runtime API client in the standard library.

Loads _HANDLER ("module.func", "pkg.mod.func" or "dir/module.func") from
LAMBDA_TASK_ROOT and serves invokes from AWS_LAMBDA_RUNTIME_API until the
process is killed. Paths come from the environment so the same file runs in a
sandbox (/var/task, /var/runtime) and natively in tests.
"""
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback

API = "/2018-06-01/runtime"
ERROR_HEADER = "Lambda-Runtime-Function-Error-Type"


class FaultError(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class Headers(dict):
    """Response headers, looked up case-insensitively (keys are lower-cased)."""

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)


class Client:
    """A minimal HTTP/1.1 keep-alive client for the Runtime API.

    http.client would pull in ssl and email (tens of milliseconds of cold
    start); the agent's answers are simple, so a socket suffices.
    """

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self.addr = (host, int(port))
        self.sock = None
        self.rfile = None

    def _connect(self):
        self.sock = socket.create_connection(self.addr)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = self.sock.makefile("rb")

    def _close(self):
        for c in (self.rfile, self.sock):
            try:
                c and c.close()
            except OSError:
                pass
        self.sock = self.rfile = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                return self._roundtrip(method, path, body, headers)
            except (OSError, ValueError):
                self._close()
                if attempt:
                    raise

    def _roundtrip(self, method, path, body, headers):
        lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % self.addr]
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        if body is not None:
            lines.append("Content-Length: %d" % len(body))
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.sock.sendall(head + body if body is not None else head)
        status_line = self.rfile.readline(65537)
        if not status_line:
            raise ValueError("connection closed")
        status = int(status_line.split(None, 2)[1])
        hdrs = Headers()
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                n = int(self.rfile.readline(65537).split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(n))
                self.rfile.readline(65537)
            data = b"".join(parts)
        else:
            data = self.rfile.read(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self._close()
        return status, hdrs, data

    def next(self):
        status, hdrs, data = self.request("GET", API + "/invocation/next")
        if status != 200:
            raise RuntimeError("runtime api /next returned %d: %r" % (status, data))
        return hdrs, data

    def post(self, path, body, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, _, data = self.request("POST", API + path, body=body, headers=h)
        if status != 202:
            sys.stderr.write("runtime api %s returned %d: %s\n" % (path, status, data.decode("utf-8", "replace")))
        return status


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __init__(self, data):
        data = data or {}
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client_:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __init__(self, data):
        for k in self.__slots__:
            setattr(self, k, data.get(k))


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __init__(self, data):
        self.custom = data.get("custom")
        self.env = data.get("env")
        c = data.get("client")
        self.client = Client_(c) if c else None


class LambdaContext:
    def __init__(self, request_id, deadline_ms, invoked_arn, identity, client_context):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.identity = identity
        self.client_context = client_context
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(int(self._deadline_ms - time.time() * 1000), 0)

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s])" % (
            self.aws_request_id, self.function_name, self.function_version)


def error_body(error_type, message, trace, request_id=""):
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}).encode()


def exc_body(exc, request_id=""):
    tb = traceback.extract_tb(exc.__traceback__)
    # Drop the bootstrap's own frames, as Lambda does.
    tb = [f for f in tb if f.filename != __file__]
    trace = traceback.format_list(tb)
    return error_body(type(exc).__name__, str(exc), trace, request_id), type(exc).__name__, trace


def load_handler(task_root, handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    if "/" in modname:
        d, modname = modname.rsplit("/", 1)
        sys.path.insert(0, os.path.join(task_root, d))
    modname = modname.replace("/", ".")
    try:
        mod = importlib.import_module(modname)
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n' % (e.filename, e.lineno), "    %s\n" % (e.text or "").strip()]
        raise FaultError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    except ImportError as e:
        raise FaultError("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except Exception as e:
        _, etype, trace = exc_body(e)
        raise FaultError("Runtime.ImportModuleError",
                         "Unable to import module '%s': %s" % (modname, e), trace)
    fn = getattr(mod, fname, None)
    if fn is None:
        raise FaultError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return fn


class RequestIdFilter(logging.Filter):
    def __init__(self):
        super().__init__()
        self.request_id = ""

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


def setup_logging():
    rid = RequestIdFilter()
    h = logging.StreamHandler(sys.stdout)
    h.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    h.addFilter(rid)
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING").upper())
    return rid


def run_hooks(hooks):
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


def snapshot_and_restore(client):
    """SnapStart (spec 5.5): before-snapshot hooks, then wait in
    /restore/next while the sandbox is checkpointed; in each restored copy,
    regain uniqueness and run the after-restore hooks."""
    import snapshot_restore_py as hooks
    try:
        run_hooks(reversed(hooks.get_before_snapshot()))
    except Exception as e:
        body = exc_body(e)[0]
        client.post("/init/error", body, {ERROR_HEADER: "Runtime.BeforeSnapshotError"})
        sys.exit(1)
    status, _, data = client.request("GET", API + "/restore/next")
    if status != 200:
        raise RuntimeError("runtime api /restore/next returned %d: %r" % (status, data))
    # Every copy of the snapshot resumes with the same interpreter state:
    # re-seed the random module from the (fresh) kernel entropy so that
    # copies do not draw the same numbers. uuid4 and secrets read
    # os.urandom each time and need nothing.
    import random
    random.seed()
    try:
        run_hooks(hooks.get_after_restore())
    except Exception as e:
        body = exc_body(e)[0]
        client.post("/restore/error", body, {ERROR_HEADER: "Runtime.AfterRestoreError"})
        sys.exit(1)


def main():
    # Line-buffered output: each print reaches the agent (and the request's
    # log) at once instead of at exit.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    os.chdir(task_root) if os.path.isdir(task_root) else None
    py = "python%d.%d" % sys.version_info[:2]
    for p in ("/opt/python/lib/%s/site-packages" % py, "/opt/python"):
        if p not in sys.path:
            sys.path.insert(0, p)
    sys.path.insert(0, task_root)
    client = Client(os.environ["AWS_LAMBDA_RUNTIME_API"])
    rid = setup_logging()
    handler_name = os.environ.get("_HANDLER", "")
    try:
        handler = load_handler(task_root, handler_name)
    except FaultError as e:
        sys.stdout.write("[ERROR] %s: %s\n" % (e.error_type, e.message))
        client.post("/init/error", error_body(e.error_type, e.message, e.trace), {ERROR_HEADER: e.error_type})
        sys.exit(1)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        snapshot_and_restore(client)

    while True:
        headers, event = client.next()
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        rid.request_id = request_id
        trace_id = headers.get("Lambda-Runtime-Trace-Id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            cognito = headers.get("Lambda-Runtime-Cognito-Identity")
            cc = headers.get("Lambda-Runtime-Client-Context")
            ctx = LambdaContext(
                request_id,
                int(headers.get("Lambda-Runtime-Deadline-Ms", "0")),
                headers.get("Lambda-Runtime-Invoked-Function-Arn"),
                CognitoIdentity(json.loads(cognito)) if cognito else None,
                ClientContext(json.loads(cc)) if cc else None,
            )
            ctx.tenant_id = headers.get("Lambda-Runtime-Aws-Tenant-Id")
            ev = json.loads(event) if event else {}
            result = handler(ev, ctx)
            try:
                body = json.dumps(result, default=_default).encode()
            except Exception as e:
                client.post("/invocation/%s/error" % request_id,
                            error_body("Runtime.MarshalError", "Unable to marshal response: %s" % e, [], request_id))
                continue
            client.post("/invocation/%s/response" % request_id, body)
        except Exception as e:
            body, etype, trace = exc_body(e, request_id)
            sys.stdout.write("[ERROR] %s: %s\n%s" % (etype, e, "".join(["Traceback (most recent call last):\n"] + trace)))
            client.post("/invocation/%s/error" % request_id, body)


def _default(o):
    import decimal
    if isinstance(o, decimal.Decimal):
        return int(o) if o == o.to_integral_value() else float(o)
    raise TypeError("Object of type %s is not JSON serializable" % type(o).__name__)


if __name__ == "__main__":
    main()

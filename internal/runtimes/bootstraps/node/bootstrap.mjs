// Ignis Node.js bootstrap: a Lambda Runtime API client on Node's standard
// library. Loads _HANDLER ("file.export", "dir/file.nested.export") from
// LAMBDA_TASK_ROOT as ESM (.mjs, or .js under "type":"module") or CommonJS
// (.js, .cjs), and calls async handlers (handler(event, context) returning a
// promise or value) and callback handlers (three parameters). Paths come
// from the environment so the same file runs in a sandbox and natively.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { pathToFileURL } from "node:url";
import crypto from "node:crypto";

const API = "/2018-06-01/runtime";
const [host, port] = (() => {
  const a = process.env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001";
  const i = a.lastIndexOf(":");
  return [a.slice(0, i), Number(a.slice(i + 1))];
})();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const taskRoot = process.env.LAMBDA_TASK_ROOT || "/var/task";
let currentRequestId = "";

function request(method, p, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: API + p, agent, headers: headers || {} }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

async function post(p, body, headers) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const res = await request("POST", p, buf, { "Content-Type": "application/json", "Content-Length": buf.length, ...(headers || {}) });
  if (res.status !== 202) process.stderr.write(`runtime api ${p} returned ${res.status}: ${res.body}\n`);
  return res;
}

function errorBody(err) {
  if (!(err instanceof Error)) {
    const msg = typeof err === "string" ? err : JSON.stringify(err);
    return { errorType: "Error", errorMessage: msg === undefined ? "" : msg, trace: [] };
  }
  return { errorType: err.name || "Error", errorMessage: err.message, trace: (err.stack || "").split("\n") };
}

class FaultError extends Error {
  constructor(type, message, cause) { super(message); this.name = type; this.cause = cause; }
}

// Console output as Lambda's Node runtime writes it: timestamp, request id,
// level, message; one record per call (newlines kept inside the record).
function patchConsole() {
  const levels = { log: "INFO", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG", trace: "TRACE" };
  for (const [fn, level] of Object.entries(levels)) {
    console[fn] = (...args) => {
      process.stdout.write(`${new Date().toISOString()}\t${currentRequestId || "undefined"}\t${level}\t${util.format(...args)}\n`);
    };
  }
}

async function loadModule(base) {
  for (const ext of [".mjs", ".cjs", ".js"]) {
    const file = base + ext;
    if (!fs.existsSync(file)) continue;
    if (ext === ".mjs") return import(pathToFileURL(file).href);
    try {
      return createRequire(file)(file);
    } catch (e) {
      if (e && e.code === "ERR_REQUIRE_ESM") return import(pathToFileURL(file).href);
      throw e;
    }
  }
  // A directory or package name resolvable from the task root.
  try {
    return createRequire(path.join(taskRoot, "index.js"))(base);
  } catch (e) {
    if (e && e.code === "MODULE_NOT_FOUND") throw new FaultError("Runtime.ImportModuleError", `Error: Cannot find module '${path.basename(base)}'`, e);
    throw e;
  }
}

async function loadHandler(spec) {
  const slash = spec.lastIndexOf("/");
  const dir = slash >= 0 ? spec.slice(0, slash + 1) : "";
  const rest = slash >= 0 ? spec.slice(slash + 1) : spec;
  const dot = rest.indexOf(".");
  if (dot <= 0) throw new FaultError("Runtime.MalformedHandlerName", `Bad handler ${spec}`);
  const moduleBase = path.resolve(taskRoot, dir + rest.slice(0, dot));
  const names = rest.slice(dot + 1).split(".");
  let mod;
  try {
    mod = await loadModule(moduleBase);
  } catch (e) {
    if (e instanceof FaultError) throw e;
    if (e instanceof SyntaxError) throw new FaultError("Runtime.UserCodeSyntaxError", `${e.name}: ${e.message}`, e);
    if (e && (e.code === "MODULE_NOT_FOUND" || e.code === "ERR_MODULE_NOT_FOUND")) throw new FaultError("Runtime.ImportModuleError", `Error: ${e.message}`, e);
    throw e;
  }
  let fn = mod;
  for (const n of names) fn = fn == null ? undefined : fn[n];
  if (fn === undefined && mod && mod.default) {
    fn = mod.default;
    for (const n of names) fn = fn == null ? undefined : fn[n];
  }
  if (typeof fn !== "function") throw new FaultError("Runtime.HandlerNotFound", `${spec} is undefined or not exported`);
  return fn;
}

function makeContext(h, onDone) {
  const deadline = Number(h["lambda-runtime-deadline-ms"] || 0);
  const ctx = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: h["lambda-runtime-aws-request-id"],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    tenantId: h["lambda-runtime-aws-tenant-id"],
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: (err, res) => onDone(err, res),
    succeed: (res) => onDone(null, res),
    fail: (err) => onDone(err || "handled"),
  };
  if (h["lambda-runtime-cognito-identity"]) ctx.identity = JSON.parse(h["lambda-runtime-cognito-identity"]);
  if (h["lambda-runtime-client-context"]) ctx.clientContext = JSON.parse(h["lambda-runtime-client-context"]);
  return ctx;
}

// invoke runs one event through the handler and resolves with [err, result].
function invoke(handler, event, h) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (err, res) => { if (!settled) { settled = true; resolve([err, res]); } };
    const ctx = makeContext(h, done);
    try {
      const r = handler.length >= 3 ? handler(event, ctx, done) : handler(event, ctx);
      if (r && typeof r.then === "function") r.then((v) => done(null, v), (e) => done(e === undefined || e === null ? new Error(String(e)) : e));
      else if (handler.length < 3) done(null, r);
    } catch (e) {
      done(e);
    }
  });
}

// SnapStart hooks (Ignis's Node equivalent of Lambda's Python
// snapshot_restore_py): function code registers them during init on
// globalThis.snapshotRestore,
//
//   snapshotRestore.registerBeforeSnapshot(async () => { await db.end(); });
//   snapshotRestore.registerAfterRestore(connect, "db.example");
//
// before-snapshot hooks run in reverse order of registration before the
// sandbox is checkpointed, after-restore hooks in order in every sandbox
// restored from it; a hook may return a promise. Only with
// AWS_LAMBDA_INITIALIZATION_TYPE=snap-start does the bootstrap call them.
const snapshotHooks = { before: [], after: [] };
globalThis.snapshotRestore = Object.freeze({
  registerBeforeSnapshot(fn, ...args) { snapshotHooks.before.push([fn, args]); return fn; },
  registerAfterRestore(fn, ...args) { snapshotHooks.after.push([fn, args]); return fn; },
});

async function runHooks(hooks) {
  for (const [fn, args] of hooks) await fn(...args);
}

// regainUniqueness gives a restored copy its own randomness: V8's
// Math.random state and crypto.randomUUID's entropy cache were saved in
// the snapshot, so every copy would draw the same numbers and UUIDs.
// Math.random becomes xorshift128+ seeded from the kernel (fresh in each
// copy); randomUUID stops caching. crypto.getRandomValues and randomBytes
// read the kernel each time and need nothing.
function regainUniqueness() {
  const seed = crypto.randomBytes(16);
  let s0 = seed.readBigUInt64LE(0) | 1n, s1 = seed.readBigUInt64LE(8) | 1n;
  const mask = (1n << 64n) - 1n;
  Math.random = () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= (x << 23n) & mask;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & mask) >> 11n) / 2 ** 53;
  };
  const randomUUID = crypto.randomUUID.bind(crypto);
  crypto.randomUUID = (opts) => randomUUID({ ...(opts || {}), disableEntropyCache: true });
  if (globalThis.crypto) globalThis.crypto.randomUUID = () => randomUUID({ disableEntropyCache: true });
  // Named ESM imports of node:crypto follow the patched export.
  syncBuiltinESMExports();
}

// snapshotAndRestore is the snap-start end of init (spec 5.5).
async function snapshotAndRestore() {
  try {
    await runHooks([...snapshotHooks.before].reverse());
  } catch (e) {
    const b = errorBody(e);
    await post("/init/error", JSON.stringify(b), { "Lambda-Runtime-Function-Error-Type": "Runtime.BeforeSnapshotError" });
    process.exit(1);
  }
  const r = await request("GET", "/restore/next");
  if (r.status !== 200) throw new Error(`runtime api /restore/next returned ${r.status}: ${r.body}`);
  regainUniqueness();
  try {
    await runHooks(snapshotHooks.after);
  } catch (e) {
    const b = errorBody(e);
    await post("/restore/error", JSON.stringify(b), { "Lambda-Runtime-Function-Error-Type": "Runtime.AfterRestoreError" });
    process.exit(1);
  }
}

async function main() {
  patchConsole();
  let handler;
  try {
    handler = await loadHandler(process.env._HANDLER || "");
  } catch (e) {
    const b = errorBody(e);
    console.error(`${b.errorType}: ${b.errorMessage}`);
    await post("/init/error", JSON.stringify(b), { "Lambda-Runtime-Function-Error-Type": b.errorType });
    process.exit(1);
  }
  // An error outside any handler promise crashes the process as in Lambda,
  // after reporting it against the invoke in flight.
  const fatal = async (e) => {
    const b = errorBody(e);
    console.error(`Uncaught ${b.errorType}: ${b.errorMessage}`);
    if (currentRequestId) await post(`/invocation/${currentRequestId}/error`, JSON.stringify(b)).catch(() => {});
    process.exit(129);
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  if (process.env.AWS_LAMBDA_INITIALIZATION_TYPE === "snap-start") await snapshotAndRestore();

  for (;;) {
    const next = await request("GET", "/invocation/next");
    if (next.status !== 200) throw new Error(`runtime api /next returned ${next.status}: ${next.body}`);
    const h = next.headers;
    const id = h["lambda-runtime-aws-request-id"];
    currentRequestId = id;
    if (h["lambda-runtime-trace-id"]) process.env._X_AMZN_TRACE_ID = h["lambda-runtime-trace-id"];
    else delete process.env._X_AMZN_TRACE_ID;
    let event;
    try {
      event = next.body.length ? JSON.parse(next.body.toString("utf8")) : {};
    } catch (e) {
      await post(`/invocation/${id}/error`, JSON.stringify(errorBody(e)));
      continue;
    }
    const [err, result] = await invoke(handler, event, h);
    if (err) {
      const b = errorBody(err);
      console.error(`Invoke Error \t${JSON.stringify(b)}`);
      await post(`/invocation/${id}/error`, JSON.stringify(b));
      continue;
    }
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      await post(`/invocation/${id}/error`, JSON.stringify({ errorType: "Runtime.MarshalError", errorMessage: `Unable to stringify response body: ${e.message}`, trace: [] }));
      continue;
    }
    await post(`/invocation/${id}/response`, body);
  }
}

main().catch((e) => {
  process.stderr.write(`bootstrap: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});

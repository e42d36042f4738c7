import { randomUUID } from "node:crypto";
const sandbox = randomUUID();
let calls = 0;
export const handler = async (event, context) => {
  calls += 1;
  if (event && event.raise) throw new Error("node asked to fail: " + event.raise);
  return { event, sandbox, calls, fn: context.functionName, mem: Number(context.memoryLimitInMB),
           request_id: context.awsRequestId, remaining: context.getRemainingTimeInMillis() };
};

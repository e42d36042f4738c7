// The Node.js echo function of `ignis bench`: returns the event unchanged.
export const handler = async (event) => event;

/**
 * aws-local-stepfunctions 3 calls `Promise.withResolvers` (ES2024) for every Task state; Node 20 does
 * not have it. Importing this module installs a spec-shaped stand-in, once, and only where the
 * runtime lacks its own, so Node 22 keeps the native one.
 */
interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

if (typeof Reflect.get(Promise, "withResolvers") !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(): Resolvers<T> {
      let resolve!: Resolvers<T>["resolve"];
      let reject!: Resolvers<T>["reject"];
      const promise = new Promise<T>((onResolve, onReject) => {
        resolve = onResolve;
        reject = onReject;
      });
      return { promise, resolve, reject };
    },
  });
}

// The `ctx` facades a widget author calls (ctx.store, ctx.assets, ctx.cache, ctx.kv, ctx.log,
// ctx.storage, ctx.binding), in plain JS over the Rust transport client (`Port` in
// src/widget/mod.rs, `Client` in src/transport/client.rs). `connect()` (Rust) calls `makeCtx`
// once the host's init message arrived.
//
// Why JS: the facades only pack arguments into `{op, args}` messages and pick fields out of
// the answers. As Rust exports, each method cost a wasm-bindgen shim in the .wasm and a class
// wrapper in the glue (about 40 of them); here they are a few hundred bytes of minified JS
// (bench/README.md, "Widget bundle steps"). scripts/shrink-pkg.mjs bundles this module into
// pkg/widget/monodit_bridge.js. The typings are src/widget/typings.rs; the host checks every
// field again (src/decode/), these facades only shape the calls.
//
// An optional argument given as `null` is sent as absent (`?? undefined`), like `undefined`.

/** How many times `ctx.store.update` runs its function before it gives up with CONFLICT. */
const UPDATE_ATTEMPTS = 8;

/** `ctx.storage` names that read as `undefined` instead of throwing, so `await ctx.storage`,
 * `JSON.stringify(ctx.storage)` and `console.log(ctx.storage)` keep working. */
const PASS_THROUGH = ["then", "toJSON", "toString", "valueOf", "constructor"];

/** The collection methods (core `ops::CollectionMethod`, port op `storage.<method>`) and the
 * argument names each sends. */
const COLLECTION_ARGS = {
  get: ["id"],
  put: ["id", "data"],
  delete: ["id"],
  exists: ["id"],
  getMany: ["ids"],
  putMany: ["items"],
  deleteMany: ["ids"],
  query: ["options"],
  count: ["where"],
};

/** The `Error` every rejection is (same shape as `js_error` in src/errors.rs). */
const monoditError = (code, detail) =>
  Object.assign(new Error(code), { name: "MonoditError", code, detail });

const toUndefined = () => undefined;

/**
 * Builds the `ctx` of one connection. `port` is the Rust `Port` (`call`, `subscribe`,
 * `unsubscribe`, `close`, `onConfig`), `init` the host's init message.
 */
export function makeCtx(port, init) {
  // The tail of the page's `update()` queue: updates run one at a time, in call order, each
  // reading after the one before is queued on the host (or settled), so each computes on top
  // of the one before instead of on the same value.
  let updates;
  let config = init.config;
  const listeners = new Set();
  port.onConfig((next) => {
    config = next;
    for (const f of [...listeners]) {
      // One throwing listener must not starve the others.
      try {
        f(next);
      } catch {}
    }
  });

  const send = (op, args) => port.call(op, args);

  /** Reports a failed subscribe to `onError`, else to the console (a subscription has no
   * promise an author could catch); returns the unsubscribe function (harmless twice). */
  const subscribe = (op, unsubscribeOp, args, callback, onError) => {
    port.subscribe(op, args, callback).catch((err) => {
      if (onError) onError(err);
      else console.error("monodit: subscribe failed", err);
    });
    let done = false;
    return () => {
      if (!done) {
        done = true;
        port.unsubscribe(args.subscription, unsubscribeOp);
      }
    };
  };

  const withBinding = (args, binding) => {
    if (binding !== undefined) args.binding = binding;
    return args;
  };

  const store = (binding) => {
    const get = (namespace) => send("store.get", withBinding({ namespace: namespace ?? undefined }, binding));
    const write = (args, queued) => port.call("store.set", withBinding(args, binding), undefined, queued);
    return {
      get: (namespace) => get(namespace).then((r) => r.value),
      set(value, options) {
        options ??= undefined;
        const isObject = typeof options === "object" && options !== null;
        return write({
          value,
          namespace: isObject ? options.namespace : options,
          ifVersion: isObject ? options.ifVersion : undefined,
        });
      },
      update(fn, namespace) {
        namespace ??= undefined;
        // Take a turn: `open` lets the next update of this page start.
        let open;
        const turn = new Promise((resolve) => (open = resolve));
        const before = updates;
        updates = turn;
        // One round: `read` gives `{value, version, head}` (a `store.get` answer or a
        // CONFLICT's data); `fn`'s result is written on that version and read token (the host
        // admits it only while it still shows the value `fn` saw); a CONFLICT starts the next
        // round on the value it carries.
        const attempt = (read, left) =>
          read.then((snap) =>
            Promise.resolve(fn(snap.value)).then((value) =>
              write({ value, namespace, ifVersion: snap.version, ifHead: snap.head }, open).catch((err) => {
                if (left <= 1 || err?.code !== "CONFLICT") throw err;
                const data = err.data;
                // A host that sends no current document: read it again.
                const current = typeof data === "object" && data !== null ? Promise.resolve(data) : get(namespace);
                return attempt(current, left - 1);
              }),
            ),
          );
        const result = Promise.resolve(before).then(() => attempt(get(namespace), UPDATE_ATTEMPTS));
        // Settled either way (a failed read, a throwing `fn`, CONFLICT): the next one may go.
        result.then(open, open);
        return result;
      },
      subscribe: (namespace, cb, onError) =>
        subscribe("store.subscribe", "store.unsubscribe", withBinding({ namespace }, binding), (ev) => cb(ev.value, ev.meta), onError),
    };
  };

  const assets = (binding, bucket) => {
    const target = (args) => {
      if (bucket !== undefined) args.namespace = bucket;
      return withBinding(args, binding);
    };
    return {
      withBucket: (bucketId) => assets(binding, bucketId),
      upload(file, options) {
        const progress = options?.onProgress;
        return port
          .call("assets.upload", target({ file, name: options?.name }), typeof progress === "function" ? progress : undefined)
          .then((r) => r.url);
      },
      list: () => send("assets.list", target({})),
      delete: (objectKey) => send("assets.delete", target({ objectKey })).then(toUndefined),
      subscribe: (cb, onError) => subscribe("assets.subscribe", "assets.unsubscribe", target({}), (ev) => cb(ev.assets, ev.meta), onError),
    };
  };

  const binding = (key) => ({ store: store(key), assets: assets(key) });

  const cache = {
    get: (key) => send("cache.get", { key }),
    set: (key, value, options) => send("cache.set", { key, value, ttlMs: options?.ttlMs }).then(toUndefined),
    delete: (key) => send("cache.delete", { key }).then(toUndefined),
    keys: () => send("cache.keys", {}),
    clear: () => send("cache.clear", {}).then(toUndefined),
  };

  const kv = {
    get: (key) => send("kv.get", { key }),
    set: (key, value) => send("kv.set", { key, value }).then(toUndefined),
    delete: (key) => send("kv.delete", { key }),
    list: (prefix) => send("kv.list", { prefix: prefix ?? undefined }),
  };

  // Fire and forget: a log line never rejects or throws. The host turns a non-string message
  // into text. A function or symbol given as data cannot cross the port and would lose the
  // whole line, so it is replaced by a note (data holding one nested deeper is still dropped
  // with its line).
  const line = (level) => (message, data) => {
    data ??= undefined;
    if (typeof data === "function" || typeof data === "symbol") {
      data = "(data omitted: it cannot be sent to the host)";
    }
    send("log", { level, message, data }).catch(toUndefined);
  };
  const log = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };

  // `ctx.storage`: one collection per declared name; any other string property throws
  // UNDECLARED_COLLECTION at once (the host checks it again). Symbols pass through.
  const collections = {};
  for (const name of Array.isArray(init.collections) ? init.collections : []) {
    if (typeof name !== "string") continue;
    const collection = {};
    for (const [method, names] of Object.entries(COLLECTION_ARGS)) {
      collection[method] = (...values) => {
        const args = { collection: name };
        // `options` and `where` are optional: `null` is sent as absent, like `undefined`.
        names.forEach((n, i) => (args[n] = n === "options" || n === "where" ? (values[i] ?? undefined) : values[i]));
        return send("storage." + method, args);
      };
    }
    // The host answers [[id, data], ...] so key order survives (object keys would put
    // integer-like ids first).
    const getMany = collection.getMany;
    collection.getMany = (ids) => getMany(ids).then((pairs) => new Map(Array.isArray(pairs) ? pairs : []));
    for (const method of ["put", "putMany"]) {
      const f = collection[method];
      collection[method] = (...values) => f(...values).then(toUndefined);
    }
    collections[name] = collection;
  }
  const storage = new Proxy(Object.freeze(collections), {
    get(target, prop) {
      if (typeof prop !== "string" || prop in target || PASS_THROUGH.includes(prop)) {
        return Reflect.get(target, prop);
      }
      throw monoditError(
        "UNDECLARED_COLLECTION",
        `collection "${prop}" is not declared in the manifest's storage (ctx.storage holds declared ` +
          "collections; keep small private state in ctx.kv or ctx.cache)",
      );
    },
  });

  const str = (v) => (typeof v === "string" ? v : "");
  const mainStore = store();
  const mainAssets = assets();
  return {
    instanceId: str(init.instanceId),
    kind: str(init.kind),
    bindings: init.bindings,
    get config() {
      return config;
    },
    onConfigChange(cb) {
      // A function per registration, so the same callback registered twice is two entries.
      const entry = (c) => cb(c);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    store: mainStore,
    assets: mainAssets,
    binding: (key) => binding(String(key)),
    cache,
    kv,
    log,
    storage,
    close: () => port.close(),
  };
}

// Thin client for the few backend routes the dashboard itself calls: the dev user/plan
// routes and the read-only topology data. Storage calls from widgets never come here: they
// go through the Host over each widget's private MessagePort.

/** An HTTP error carrying the backend's stable code (crates/core/src/errors.rs). */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(code);
    this.code = code;
    this.detail = message;
    this.status = status;
  }
}

export function createApi(baseUrl, getToken) {
  async function call(method, path, body) {
    const headers = {};
    const token = getToken();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await fetch(baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError("NETWORK", String(err), 0);
    }
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) {
      throw new ApiError(json?.code ?? "INTERNAL", json?.message ?? res.statusText, res.status);
    }
    return json;
  }

  return {
    /** `POST /v1/dev/users {plan}` → `{userId, token}` (server started with --dev). */
    createUser: (plan = "pro") => call("POST", "/v1/dev/users", { plan, addons: 0 }),
    /** `PUT /v1/dev/plan {plan, addons}` → Me. */
    setPlan: (plan, addons = 0) => call("PUT", "/v1/dev/plan", { plan, addons }),
    /** `GET /v1/me` → `{userId, plan, addons, usedBytes, limitBytes}`. */
    me: () => call("GET", "/v1/me"),
    /** `GET /v1/buckets` → `[BucketInfo]`. */
    buckets: () => call("GET", "/v1/buckets"),
    /** `GET /v1/documents/{bucketId}` → `{bucketId, version, value, ...}`. */
    document: (bucketId) => call("GET", `/v1/documents/${encodeURIComponent(bucketId)}`),
    /** `GET /v1/instances` → `[InstanceInfo]`. */
    instances: () => call("GET", "/v1/instances"),
    /** `DELETE /v1/buckets/{backend}/{bucketId}` → DeletedBucket. */
    deleteBucket: (backend, bucketId) =>
      call("DELETE", `/v1/buckets/${encodeURIComponent(backend)}/${encodeURIComponent(bucketId)}`),
  };
}

/** Formats a byte count for people (decimal units, as the plans are marketed). */
export function formatBytes(n) {
  if (n == null) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

//! monodit-bridge: the browser SDK (widget `connect()` and host `Host`).

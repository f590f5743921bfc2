//! The small facades: `ctx.cache` (browser-only), `ctx.kv` (per-plugin settings) and
//! `ctx.log` (lines to the host's console and event log).

use super::{field, map_promise, send, undefined};
use crate::errors::obj;
use crate::transport::{on_err, Client};
use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;

/// `ctx.cache`: browser-only per-instance data (never sent to the server, not counted in
/// quota). Values are anything structured-cloneable, Blobs included. Keys are 1 to 1,024
/// bytes of UTF-8 (1 KiB); a longer key rejects with INVALID_ARGUMENT.
#[wasm_bindgen]
pub struct Cache {
    pub(super) client: Client,
}

#[wasm_bindgen]
impl Cache {
    /// The value, or `undefined` when missing or expired. `key`: 1 to 1,024 bytes of UTF-8.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(&self, key: JsValue) -> Promise {
        send(&self.client, "cache.get", obj(&[("key", &key)]).into())
    }

    /// Stores a value; `ttlMs` expires it. `key`: 1 to 1,024 bytes of UTF-8.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn set(
        &self,
        key: JsValue,
        value: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "CacheSetOptions")] options: Option<Object>,
    ) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let args = obj(&[
            ("key", &key),
            ("value", &value),
            ("ttlMs", &field(&options, "ttlMs")),
        ]);
        map_promise(send(&self.client, "cache.set", args.into()), undefined)
    }

    /// Removes a key.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(&self, key: JsValue) -> Promise {
        map_promise(
            send(&self.client, "cache.delete", obj(&[("key", &key)]).into()),
            undefined,
        )
    }

    /// Every live key.
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn keys(&self) -> Promise {
        send(&self.client, "cache.keys", Object::new().into())
    }

    /// Removes every key of this instance.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        map_promise(
            send(&self.client, "cache.clear", Object::new().into()),
            undefined,
        )
    }
}

/// `ctx.kv`: see the `KV` type.
#[wasm_bindgen(skip_typescript)]
pub struct Kv {
    pub(super) client: Client,
}

#[wasm_bindgen]
impl Kv {
    /// The value, or `null` when unset.
    pub fn get(&self, key: JsValue) -> Promise {
        send(&self.client, "kv.get", obj(&[("key", &key)]).into())
    }

    /// Stores a JSON value.
    pub fn set(&self, key: JsValue, value: JsValue) -> Promise {
        let args = obj(&[("key", &key), ("value", &value)]);
        map_promise(send(&self.client, "kv.set", args.into()), undefined)
    }

    /// Removes a key; resolves with whether it existed.
    pub fn delete(&self, key: JsValue) -> Promise {
        send(&self.client, "kv.delete", obj(&[("key", &key)]).into())
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn list(&self, prefix: Option<JsValue>) -> Promise {
        let prefix = prefix.unwrap_or(JsValue::UNDEFINED);
        send(&self.client, "kv.list", obj(&[("prefix", &prefix)]).into())
    }
}

/// `ctx.log`: see the `Log` type. Fire and forget: a log line never rejects or throws.
#[wasm_bindgen(skip_typescript)]
pub struct Log {
    pub(super) client: Client,
}

impl Log {
    // The host turns a non-string message into text; nothing is converted here (size).
    fn send(&self, level: &str, message: JsValue, data: Option<JsValue>) {
        let mut data = data.unwrap_or(JsValue::UNDEFINED);
        // Logging never throws. A function or symbol given as data cannot cross the port and
        // would lose the whole line, so it is replaced by a note (data holding one nested
        // deeper is still dropped with its line: a retry path costs widget bundle bytes).
        if data.is_function() || data.is_symbol() {
            data = JsValue::from_str("(data omitted: it cannot be sent to the host)");
        }
        let args = obj(&[
            ("level", &JsValue::from_str(level)),
            ("message", &message),
            ("data", &data),
        ]);
        let _ = on_err(&send(&self.client, "log", args.into()), |_| {
            Ok(JsValue::UNDEFINED)
        });
    }
}

#[wasm_bindgen]
impl Log {
    /// `ctx.log.debug(message, data?)`
    pub fn debug(&self, message: JsValue, data: Option<JsValue>) {
        self.send("debug", message, data)
    }
    /// `ctx.log.info(message, data?)`
    pub fn info(&self, message: JsValue, data: Option<JsValue>) {
        self.send("info", message, data)
    }
    /// `ctx.log.warn(message, data?)`
    pub fn warn(&self, message: JsValue, data: Option<JsValue>) {
        self.send("warn", message, data)
    }
    /// `ctx.log.error(message, data?)`
    pub fn error(&self, message: JsValue, data: Option<JsValue>) {
        self.send("error", message, data)
    }
}

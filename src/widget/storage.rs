//! `ctx.storage`: a proxy with one `StorageCollection` per declared collection; an undeclared
//! name throws UNDECLARED_COLLECTION at once (the host checks it again).

use super::{map_promise, send, undefined};
use crate::errors::{self, obj};
use crate::transport::Client;
use js_sys::{Array, Object, Promise, Reflect};
use monodit_core::ops::CollectionMethod;
use monodit_core::ErrorCode;
use wasm_bindgen::prelude::*;

/// Names that must read as `undefined` instead of throwing, so `await ctx.storage`,
/// `JSON.stringify(ctx.storage)` and `console.log(ctx.storage)` keep working.
const PASS_THROUGH: [&str; 5] = ["then", "toJSON", "toString", "valueOf", "constructor"];

pub(super) fn storage_proxy(client: &Client, collections: &[String]) -> Result<JsValue, JsValue> {
    let target = Object::new();
    for name in collections {
        let c = StorageCollection {
            client: client.clone(),
            name: JsValue::from_str(name),
        };
        Reflect::set(&target, &JsValue::from_str(name), &JsValue::from(c))?;
    }
    Object::freeze(&target);
    let get = Closure::<dyn Fn(JsValue, JsValue) -> Result<JsValue, JsValue>>::new(
        |target: JsValue, prop: JsValue| {
            let pass = match prop.as_string() {
                None => true, // symbols (Symbol.toStringTag, util.inspect.custom, ...)
                Some(name) => {
                    Reflect::has(&target, &prop).unwrap_or(false)
                        || PASS_THROUGH.contains(&name.as_str())
                }
            };
            if pass {
                return Reflect::get(&target, &prop);
            }
            let name = prop.as_string().unwrap_or_default();
            Err(errors::code_error(
                ErrorCode::UndeclaredCollection,
                &errors::join(&[
                    "collection \"",
                    &name,
                    "\" is not declared in the manifest's storage (ctx.storage holds declared \
                     collections; keep small private state in ctx.kv or ctx.cache)",
                ]),
            ))
        },
    );
    let handler = obj(&[("get", &get.into_js_value())]);
    Ok(js_sys::Proxy::new(&target, &handler).into())
}

/// One declared collection, `ctx.storage.<name>`.
#[wasm_bindgen]
pub struct StorageCollection {
    pub(super) client: Client,
    pub(super) name: JsValue,
}

impl StorageCollection {
    fn call(&self, method: CollectionMethod, fields: &[(&str, &JsValue)]) -> Promise {
        let args = obj(fields);
        let _ = Reflect::set(&args, &"collection".into(), &self.name);
        send(&self.client, method.port_op(), args.into())
    }
}

#[wasm_bindgen]
impl StorageCollection {
    /// The item's data, or `null`.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn get(&self, id: JsValue) -> Promise {
        self.call(CollectionMethod::Get, &[("id", &id)])
    }

    /// Creates or replaces an item.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn put(&self, id: JsValue, data: JsValue) -> Promise {
        map_promise(
            self.call(CollectionMethod::Put, &[("id", &id), ("data", &data)]),
            undefined,
        )
    }

    /// Deletes an item; resolves whether it existed.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn delete(&self, id: JsValue) -> Promise {
        self.call(CollectionMethod::Delete, &[("id", &id)])
    }

    /// Whether an item exists.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn exists(&self, id: JsValue) -> Promise {
        self.call(CollectionMethod::Exists, &[("id", &id)])
    }

    /// The found items as a `Map` (missing ids are absent), in the order asked.
    #[wasm_bindgen(js_name = getMany, unchecked_return_type = "Promise<Map<string, any>>")]
    pub fn get_many(&self, ids: JsValue) -> Promise {
        // The host answers [[id, data], ...] so key order survives (object keys would put
        // integer-like ids first).
        map_promise(
            self.call(CollectionMethod::GetMany, &[("ids", &ids)]),
            |pairs| {
                let map = js_sys::Map::new();
                if Array::is_array(&pairs) {
                    for pair in Array::from(&pairs).iter() {
                        let pair = Array::from(&pair);
                        map.set(&pair.get(0), &pair.get(1));
                    }
                }
                map.into()
            },
        )
    }

    /// Writes many items in one transaction.
    #[wasm_bindgen(js_name = putMany, unchecked_return_type = "Promise<void>")]
    pub fn put_many(&self, items: JsValue) -> Promise {
        map_promise(
            self.call(CollectionMethod::PutMany, &[("items", &items)]),
            undefined,
        )
    }

    /// Deletes many items in one transaction; resolves how many existed.
    #[wasm_bindgen(js_name = deleteMany, unchecked_return_type = "Promise<number>")]
    pub fn delete_many(&self, ids: JsValue) -> Promise {
        self.call(CollectionMethod::DeleteMany, &[("ids", &ids)])
    }

    /// A page of items filtered/ordered by indexed fields; pass `cursor` back for the next.
    #[wasm_bindgen(unchecked_return_type = "Promise<PaginatedResult<{id: string, data: any}>>")]
    pub fn query(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "QueryOptions")] options: Option<JsValue>,
    ) -> Promise {
        self.call(
            CollectionMethod::Query,
            &[("options", &options.unwrap_or(JsValue::UNDEFINED))],
        )
    }

    /// How many items match (all when `where` is absent).
    #[wasm_bindgen(unchecked_return_type = "Promise<number>")]
    pub fn count(
        &self,
        #[wasm_bindgen(js_name = "where", unchecked_optional_param_type = "WhereClause")]
        where_: Option<JsValue>,
    ) -> Promise {
        self.call(
            CollectionMethod::Count,
            &[("where", &where_.unwrap_or(JsValue::UNDEFINED))],
        )
    }
}

//! The browser's timer and clock.

use wasm_bindgen::JsValue;

/// Sleeps on the browser's timer (0 ms = next macrotask).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let ok = web_sys::window().map(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.max(0))
                .is_ok()
        });
        if ok != Some(true) {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Milliseconds since the epoch (`Date.now()`; `SystemTime::now()` panics on
/// wasm32-unknown-unknown).
pub fn now() -> f64 {
    js_sys::Date::now()
}

//! The widget side of the window handshake: the listener that takes every port the host hands
//! this document, and the `monodit:hello` that asks for one.

use super::client::{code_error, page_window};
use super::field;
use crate::errors;
use crate::protocol::*;
use js_sys::Object;
use monodit_core::ErrorCode;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, MessagePort};

/// Widget side of the window handshake: calls `on_port` with the port of every valid
/// handshake for the lifetime of the page (the first connects; later ones are host
/// re-handshakes). Only messages whose `source` is `window.parent` count; everything else
/// on `window` is ignored. Also posts one `monodit:hello` to the parent so a host whose
/// `load` handshake went out before this listener existed sends a fresh one.
///
/// Returns NOT_EMBEDDED at once when the page has no parent.
pub fn listen_for_handshakes(
    on_port: impl FnMut(Result<MessagePort, JsValue>) + 'static,
) -> Result<(), JsValue> {
    let window = page_window()
        .ok_or_else(|| code_error(ErrorCode::NotEmbedded, "connect() needs a window"))?;
    let parent = window.parent().ok().flatten();
    let parent = match parent {
        Some(p) if !Object::is(&p, &window) => p,
        _ => {
            return Err(code_error(
                ErrorCode::NotEmbedded,
                "this page is not embedded in a host (window.parent === window)",
            ))
        }
    };
    let parent_js: JsValue = parent.clone().into();
    let mut on_port = on_port;
    let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let from_parent = ev.source().is_some_and(|s| Object::is(&s, &parent_js));
        let data = ev.data();
        if !from_parent || field(&data, "type") != HANDSHAKE_TYPE {
            return;
        }
        if field(&data, "version").as_f64() != Some(f64::from(PROTOCOL_VERSION)) {
            on_port(Err(code_error(
                ErrorCode::UnsupportedProtocol,
                "the host speaks another protocol version",
            )));
            return;
        }
        let port = ev
            .ports()
            .get(0)
            .dyn_into::<MessagePort>()
            .or_else(|_| field(&data, "port").dyn_into::<MessagePort>());
        if let Ok(port) = port {
            on_port(Ok(port));
        }
    });
    window.add_event_listener_with_callback("message", listener.as_ref().unchecked_ref())?;
    // The listener lives as long as the page: re-handshakes can come at any time.
    listener.forget();
    let hello = errors::obj(&[
        ("type", &JsValue::from_str(HELLO_TYPE)),
        ("version", &JsValue::from(PROTOCOL_VERSION)),
    ]);
    let _ = parent.post_message(&hello, "*");
    Ok(())
}

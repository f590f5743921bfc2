//! Which document gets a port: the handshake on each iframe `load` and on a `monodit:hello`
//! from the iframe's own window, the `MutationObserver`s that tell host navigations from
//! the widget's own (and removed iframes), and the source re-read from the iframe URL.

use super::{field, HostInner, Mount};
use crate::protocol::HELLO_TYPE;
use crate::transport;
use js_sys::{Array, Object};
use monodit_core::plugins;
use monodit_core::{Error, ErrorCode};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlIFrameElement, MessageEvent};

/// Most hellos per second one mount answers with a new port.
pub(super) const MAX_HELLOS_PER_SECOND: u32 = 10;

/// The host's `message` listener for `monodit:hello`. A widget that connected after its
/// iframe's `load` missed that handshake and asks for one. Only the iframe's own window can be
/// `source`, and the answer is just a fresh port to that same window, so this grants nothing
/// a widget did not have.
pub(super) fn hello_listener(weak: Weak<HostInner>) -> transport::PortListener {
    Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
        let Some(inner) = weak.upgrade() else { return };
        if field(&ev.data(), "type").as_string().as_deref() != Some(HELLO_TYPE) {
            return;
        }
        let Some(source) = ev.source() else { return };
        let mount = inner
            .mounts
            .borrow()
            .iter()
            .find(|m| {
                m.iframe
                    .as_ref()
                    .and_then(|f| f.content_window())
                    .is_some_and(|w| Object::is(&w, &source))
            })
            .cloned();
        if let Some(m) = mount {
            m.doc_connected.set(true);
            // A hello storm must not make the host churn ports and flood its event log.
            let admitted = m.hello_window.borrow_mut().admit(js_sys::Date::now());
            if admitted {
                m.handshake();
            }
        }
    })
}

/// The source of the widget an iframe loads: its resolved URL without query or fragment;
/// none for `srcdoc` or blank frames (or a URL no source may be, see core `plugins`).
pub(super) fn iframe_source(f: &HtmlIFrameElement) -> Option<String> {
    let s = plugins::source_of_url(&f.src());
    (s != "about:blank" && plugins::validate_source(&s).is_ok()).then_some(s)
}

impl HostInner {
    /// A removed iframe's document is gone: tear its mount down (port closed, subscriptions
    /// dropped) as soon as the DOM says so, not at the next call that will never come.
    pub(super) fn observe_removals(self: &Rc<Self>) {
        let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        else {
            return;
        };
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut()>::new(move || {
            let Some(inner) = weak.upgrade() else { return };
            let gone: Vec<Rc<Mount>> = inner
                .mounts
                .borrow()
                .iter()
                .filter(|m| m.detached())
                .cloned()
                .collect();
            for m in gone {
                m.teardown();
            }
        });
        let Ok(observer) = web_sys::MutationObserver::new(cb.as_ref().unchecked_ref()) else {
            return;
        };
        let init = web_sys::MutationObserverInit::new();
        init.set_child_list(true);
        init.set_subtree(true);
        if observer.observe_with_options(&root, &init).is_ok() {
            *self.observer.borrow_mut() = Some((observer, cb));
        }
    }
}

impl Mount {
    pub(super) fn watch_iframe(self: &Rc<Self>) {
        let Some(iframe) = &self.iframe else { return };
        let weak = Rc::downgrade(self);
        let on_load = Closure::<dyn FnMut()>::new(move || {
            if let Some(m) = weak.upgrade() {
                m.on_iframe_load();
            }
        });
        let _ = iframe.add_event_listener_with_callback("load", on_load.as_ref().unchecked_ref());
        *self.on_load.borrow_mut() = Some(on_load);
        // Mutation records arrive (microtasks) before the `load` they cause (a task).
        let weak = Rc::downgrade(self);
        let cb = Closure::<dyn FnMut()>::new(move || {
            if let Some(m) = weak.upgrade() {
                m.host_navigated.set(true);
            }
        });
        if let Ok(observer) = web_sys::MutationObserver::new(cb.as_ref().unchecked_ref()) {
            let init = web_sys::MutationObserverInit::new();
            init.set_attribute_filter(&Array::of2(&"src".into(), &"srcdoc".into()));
            if observer.observe_with_options(iframe, &init).is_ok() {
                *self.src_observer.borrow_mut() = Some((observer, cb));
            }
        }
        // The document may already be loaded (mount after load); a handshake now reaches it.
        // If it is still the initial about:blank, the `load` handshake replaces this one.
        if iframe.content_window().is_some() {
            self.handshake();
        }
    }

    /// An iframe `load`. The host's own navigations (it set `src`/`srcdoc`) and the first
    /// widget document after mount get a port, with the source re-read from the URL. A load
    /// the widget caused itself (a link, a redirect, `location` assignments or reloads), once
    /// a widget document had connected, is not trusted: whatever page it loaded would
    /// otherwise inherit this instance's storage. The mount is suspended (no port, hellos
    /// ignored, a `protocolError` event) until the host sets `src` again.
    pub(super) fn on_iframe_load(self: &Rc<Self>) {
        let by_host = self.host_navigated.replace(false);
        let was_connected = self.doc_connected.replace(false);
        // Once suspended, only the host's own navigation lifts it (a page the widget went to
        // could otherwise navigate on, silently, and the next page would be trusted).
        if !by_host && (was_connected || self.suspended.get()) {
            self.close_session();
            self.suspended.set(true);
            self.log_protocol_error(&Error::new(
                ErrorCode::Forbidden,
                "the widget navigated away by itself; it stays disconnected until the host \
                 sets its src again",
            ));
            return;
        }
        self.suspended.set(false);
        self.refresh_source();
        self.handshake();
    }

    /// Re-reads the source from the iframe URL (unless the mount named one) and registers
    /// again when it changed or was never accepted; plugin calls wait for that.
    pub(super) fn refresh_source(self: &Rc<Self>) {
        if !self.explicit_source {
            let now = self.iframe.as_ref().and_then(iframe_source);
            if *self.source.borrow() != now {
                *self.source.borrow_mut() = now;
                self.registered.set(false);
            }
        }
        if !self.registered.get() {
            let me = self.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = me.register().await {
                    me.log_protocol_error(&e);
                }
            });
        }
    }

    /// A fresh port for the iframe's current document; the previous one is closed.
    pub(super) fn handshake(self: &Rc<Self>) {
        if self.check_detached() || self.suspended.get() {
            return;
        }
        let Some(win) = self.iframe.as_ref().and_then(|f| f.content_window()) else {
            return;
        };
        match transport::handshake(&win) {
            Ok(port) => self.open_session(port),
            Err(e) => {
                web_sys::console::warn_1(&format!("monodit-bridge: handshake failed: {e}").into())
            }
        }
    }
}

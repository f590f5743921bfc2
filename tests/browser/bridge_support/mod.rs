//! Helpers shared by the bridge browser tests (not a test target itself).
#![allow(dead_code)]

use js_sys::{Object, Promise, Reflect};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlIFrameElement, MessageEvent, MessagePort};

/// Resolves after `ms` (lets the event loop run; never used to assert timing).
pub async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

/// Polls `cond` until it holds, failing the test after `max_ms` of waiting.
pub async fn wait_until(what: &str, max_ms: i32, mut cond: impl FnMut() -> bool) {
    let mut waited = 0;
    while !cond() {
        assert!(waited < max_ms, "timed out waiting for {what}");
        sleep(20).await;
        waited += 20;
    }
}

pub fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED)
}

pub fn json(s: &str) -> JsValue {
    js_sys::JSON::parse(s).expect("test JSON")
}

pub fn stringify(v: &JsValue) -> String {
    js_sys::JSON::stringify(v)
        .map(String::from)
        .unwrap_or_else(|_| format!("{v:?}"))
}

/// Awaits a promise that must reject and returns the rejection.
pub async fn rejection(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => panic!("expected a rejection, got {}", stringify(&v)),
        Err(e) => e,
    }
}

/// Awaits a promise that must resolve.
pub async fn ok(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => panic!(
            "expected success, got {} ({})",
            get(&e, "message").as_string().unwrap_or_default(),
            get(&e, "detail").as_string().unwrap_or_default()
        ),
    }
}

/// The stable code of a rejection, checking the contract `err.message === code` (docs/ERRORS.md).
pub fn code(err: &JsValue) -> String {
    assert!(
        err.is_instance_of::<js_sys::Error>(),
        "rejections are Errors: {err:?}"
    );
    let message = get(err, "message").as_string().unwrap_or_default();
    let code = get(err, "code").as_string().unwrap_or_default();
    assert_eq!(message, code, "err.message is the stable code");
    code
}

/// Collects every message arriving on a port (a raw peer, no protocol logic).
pub struct RawPeer {
    pub port: MessagePort,
    /// Every message received, a batch's entries one by one.
    pub inbox: Rc<RefCell<Vec<JsValue>>>,
    /// How many `message` events arrived (a batch counts once).
    pub events: Rc<std::cell::Cell<usize>>,
    _cb: Closure<dyn FnMut(MessageEvent)>,
}

impl RawPeer {
    pub fn new(port: MessagePort) -> RawPeer {
        let inbox = Rc::new(RefCell::new(Vec::new()));
        let i = inbox.clone();
        let events = Rc::new(std::cell::Cell::new(0));
        let e = events.clone();
        let cb = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            e.set(e.get() + 1);
            let data = ev.data();
            // A batch (see `protocol`): its messages, in order.
            if js_sys::Array::is_array(&data) {
                i.borrow_mut().extend(js_sys::Array::from(&data).iter());
            } else {
                i.borrow_mut().push(data);
            }
        });
        port.set_onmessage(Some(cb.as_ref().unchecked_ref()));
        port.start();
        RawPeer {
            port,
            inbox,
            events,
            _cb: cb,
        }
    }

    pub fn send(&self, msg: &JsValue) {
        self.port.post_message(msg).expect("post");
    }

    /// The reply with this id (waits up to 5 s).
    pub async fn reply(&self, id: f64) -> JsValue {
        let find = |inbox: &Vec<JsValue>| {
            inbox
                .iter()
                .find(|m| get(m, "id").as_f64() == Some(id) && !get(m, "ok").is_undefined())
                .cloned()
        };
        wait_until(&format!("reply {id}"), 5000, || {
            find(&self.inbox.borrow()).is_some()
        })
        .await;
        find(&self.inbox.borrow()).unwrap()
    }
}

/// `{type:"bridge-test", ...}` messages that iframes post to this page.
pub struct FrameReports {
    pub inbox: Rc<RefCell<Vec<(JsValue, JsValue)>>>,
    cb: Closure<dyn FnMut(MessageEvent)>,
}

impl FrameReports {
    pub fn listen() -> FrameReports {
        let inbox = Rc::new(RefCell::new(Vec::new()));
        let i = inbox.clone();
        let cb = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if get(&ev.data(), "type").as_string().as_deref() == Some("bridge-test") {
                let src: JsValue = ev.source().map(Into::into).unwrap_or(JsValue::NULL);
                i.borrow_mut().push((src, ev.data()));
            }
        });
        web_sys::window()
            .unwrap()
            .add_event_listener_with_callback("message", cb.as_ref().unchecked_ref())
            .unwrap();
        FrameReports { inbox, cb }
    }

    /// The first report from `frame` (waits up to `max_ms`).
    pub async fn from(&self, frame: &HtmlIFrameElement, max_ms: i32) -> JsValue {
        let win: JsValue = frame.content_window().expect("frame window").into();
        let find = |inbox: &Vec<(JsValue, JsValue)>| {
            inbox
                .iter()
                .find(|(s, _)| Object::is(s, &win))
                .map(|(_, d)| d.clone())
        };
        wait_until("a report from the widget iframe", max_ms, || {
            find(&self.inbox.borrow()).is_some()
        })
        .await;
        find(&self.inbox.borrow()).unwrap()
    }
}

impl Drop for FrameReports {
    fn drop(&mut self) {
        let _ = web_sys::window()
            .unwrap()
            .remove_event_listener_with_callback("message", self.cb.as_ref().unchecked_ref());
    }
}

/// Appends an iframe with `srcdoc` (optionally sandboxed) and waits for its `load`.
pub async fn frame(srcdoc: &str, sandbox: Option<&str>) -> HtmlIFrameElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let f: HtmlIFrameElement = doc.create_element("iframe").unwrap().unchecked_into();
    if let Some(s) = sandbox {
        f.set_attribute("sandbox", s).unwrap();
    }
    f.set_srcdoc(srcdoc);
    let loaded = Promise::new(&mut |resolve, _| {
        f.add_event_listener_with_callback("load", &resolve)
            .unwrap();
    });
    doc.body().unwrap().append_child(&f).unwrap();
    JsFuture::from(loaded).await.unwrap();
    f
}

/// A widget page that imports this test bundle, calls `connect()` and reports the outcome
/// to its parent with `{type:"bridge-test", ok, ...}`. `body` runs with `ctx` in scope and
/// returns the value to report.
pub fn widget_page(timeout_ms: u32, body: &str) -> String {
    format!(
        r#"<!doctype html><script type="module">
const report = (m) => parent.postMessage(Object.assign({{type: "bridge-test"}}, m), "*");
try {{
  const mod = await import("/wasm-bindgen-test.js");
  await mod.default({{module_or_path: "/wasm-bindgen-test_bg.wasm"}});
  const ctx = await mod.connect({{timeoutMs: {timeout_ms}}});
  const value = await (async () => {{ {body} }})();
  report({{ok: true, instanceId: ctx.instanceId, value}});
}} catch (e) {{
  report({{ok: false, code: e && e.code, message: String(e && e.message), detail: e && e.detail}});
}}
</script>"#
    )
}

pub fn remove(f: &HtmlIFrameElement) {
    f.remove();
}

impl FrameReports {
    /// Every report from `frame` so far.
    pub fn all_from(&self, frame: &HtmlIFrameElement) -> Vec<JsValue> {
        let win: JsValue = frame.content_window().expect("frame window").into();
        self.inbox
            .borrow()
            .iter()
            .filter(|(s, _)| Object::is(s, &win))
            .map(|(_, d)| d.clone())
            .collect()
    }
}

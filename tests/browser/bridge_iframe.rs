//! The window handshake with real iframes, no backend needed: the widget bundle (this test
//! bundle, imported inside a srcdoc iframe) runs the real `connect()`; the host end is the
//! real transport (`transport::handshake` + `Server`). The full `Host` with real iframes and
//! the real backend is in bridge_host.rs.
#![cfg(target_arch = "wasm32")]

use crate::bridge_support::*;
use futures::future::FutureExt;
use js_sys::{Object, Reflect};
use monodit_bridge::protocol::{Call, Request, HELLO_TYPE, INIT_TYPE, PROTOCOL_VERSION};
use monodit_bridge::transport::{self, Handler, OnDropped, Sender, Server};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlIFrameElement, MessageEvent};

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

/// The smallest host: a handshake per `load` and per hello from this frame, like `Host`.
struct MiniHost {
    servers: Rc<RefCell<Vec<Server>>>,
    handshakes: Rc<RefCell<u32>>,
    hello: Closure<dyn FnMut(MessageEvent)>,
}

fn serve(frame: &HtmlIFrameElement, servers: &Rc<RefCell<Vec<Server>>>, count: &Rc<RefCell<u32>>) {
    let win = frame.content_window().unwrap();
    let port = transport::handshake(&win).expect("handshake");
    let handler: Handler = Rc::new(|req: Request, _s: Sender| {
        async move {
            match req.call {
                Call::CacheKeys => Ok(json(r#"["from-host"]"#)),
                _ => Ok(JsValue::NULL),
            }
        }
        .boxed_local()
    });
    let on_dropped: OnDropped = Rc::new(|_| {});
    let server = Server::new(port, handler, on_dropped);
    server.sender().post(&obj(&[
        ("type", JsValue::from_str(INIT_TYPE)),
        ("version", JsValue::from(PROTOCOL_VERSION)),
        ("instanceId", JsValue::from_str("w-iframe")),
        ("kind", JsValue::from_str("widget")),
        ("config", json("{}")),
        ("collections", json("[]")),
        ("bindings", json("[]")),
    ]));
    // The previous port of this frame is dropped (closed on drop).
    servers.borrow_mut().clear();
    servers.borrow_mut().push(server);
    *count.borrow_mut() += 1;
}

impl MiniHost {
    fn new(frame: HtmlIFrameElement) -> MiniHost {
        let servers = Rc::new(RefCell::new(Vec::new()));
        let handshakes = Rc::new(RefCell::new(0));
        let (s, c, f) = (servers.clone(), handshakes.clone(), frame.clone());
        let hello = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let from_frame = ev
                .source()
                .zip(f.content_window())
                .is_some_and(|(s, w)| Object::is(&s, &w));
            if from_frame && get(&ev.data(), "type").as_string().as_deref() == Some(HELLO_TYPE) {
                serve(&f, &s, &c);
            }
        });
        web_sys::window()
            .unwrap()
            .add_event_listener_with_callback("message", hello.as_ref().unchecked_ref())
            .unwrap();
        serve(&frame, &servers, &handshakes);
        MiniHost {
            servers,
            handshakes,
            hello,
        }
    }
}

impl Drop for MiniHost {
    fn drop(&mut self) {
        let _ = web_sys::window()
            .unwrap()
            .remove_event_listener_with_callback("message", self.hello.as_ref().unchecked_ref());
        self.servers.borrow_mut().clear();
    }
}

#[wasm_bindgen_test]
async fn widget_in_an_iframe_connects_through_the_parents_handshake() {
    let reports = FrameReports::listen();
    let frame = frame(&widget_page(5000, "return await ctx.cache.keys();"), None).await;
    let host = MiniHost::new(frame.clone());
    let report = reports.from(&frame, 10_000).await;
    assert_eq!(get(&report, "ok"), JsValue::TRUE, "{}", stringify(&report));
    assert_eq!(
        get(&report, "instanceId").as_string().as_deref(),
        Some("w-iframe")
    );
    assert_eq!(stringify(&get(&report, "value")), r#"["from-host"]"#);
    assert!(*host.handshakes.borrow() >= 1);
    remove(&frame);
}

#[wasm_bindgen_test]
async fn a_handshake_from_a_non_parent_window_is_ignored() {
    let reports = FrameReports::listen();
    // The widget waits 1.5 s for its parent, which never answers (no host on this page).
    let victim = frame(&widget_page(1500, "return 'connected';"), None).await;
    victim.set_name("victim");
    // A sibling frame keeps offering a well-formed handshake with its own port, and answers
    // on that port like a host would.
    let attacker = r#"<!doctype html><script>
// Same-origin test pages let the sibling find the victim's window directly; a real attacker
// would walk parent.frames[i]. Either way it holds a WindowProxy that is not its parent.
const target = parent.document.querySelector('iframe[name="victim"]').contentWindow;
let posted = 0;
const timer = setInterval(() => {
  const ch = new MessageChannel();
  ch.port1.postMessage({type: "monodit:init", version: 1, instanceId: "evil", kind: "widget",
                        config: {}, collections: [], bindings: []});
  target.postMessage({type: "monodit:connect", version: 1, port: ch.port2}, "*", [ch.port2]);
  if (++posted === 5) parent.postMessage({type: "bridge-test", posted}, "*");
}, 50);
setTimeout(() => clearInterval(timer), 3000);
</script>"#;
    let attacker = frame(attacker, None).await;
    // The attack really reached the victim's window (else this test proves nothing).
    let attack = reports.from(&attacker, 5_000).await;
    assert_eq!(get(&attack, "posted").as_f64(), Some(5.0));
    let report = reports.from(&victim, 10_000).await;
    assert_eq!(get(&report, "ok"), JsValue::FALSE, "{}", stringify(&report));
    assert_eq!(
        get(&report, "code").as_string().as_deref(),
        Some("NOT_EMBEDDED")
    );
    remove(&attacker);
    remove(&victim);
}

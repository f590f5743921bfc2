//! The platform seam (`monodit_bridge::web`) in real Chromium: timers, listeners removed on
//! drop, localStorage, Web Locks and BroadcastChannel. Needs no server.
#![cfg(target_arch = "wasm32")]

use monodit_bridge::web::{
    local_storage_get, local_storage_set, now, sleep, with_lock, Channel, EventListener,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen_test::*;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", (js_sys::Math::random() * 1e12) as u64)
}

/// Waits (bounded) until `cond` holds.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = now();
    while !cond() {
        assert!(now() - start < 5_000.0, "timed out waiting for {what}");
        sleep(10).await;
    }
}

#[wasm_bindgen_test]
async fn sleep_waits_on_the_timer_and_a_dropped_sleep_is_harmless() {
    let t0 = now();
    sleep(30).await;
    // Timers may fire a little early in Chromium's clamping; never 20 ms early.
    assert!(now() - t0 >= 20.0, "slept {} ms", now() - t0);
    sleep(-5).await; // negative counts as 0
                     // A sleep that loses a race is dropped unfinished (the mirror's open timeout does this).
    let long = sleep(60_000);
    let short = sleep(0);
    futures::pin_mut!(long);
    futures::pin_mut!(short);
    assert!(matches!(
        futures::future::select(long, short).await,
        futures::future::Either::Right(_)
    ));
}

#[wasm_bindgen_test]
async fn an_event_listener_is_removed_when_dropped() {
    let target = web_sys::EventTarget::new().unwrap();
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let listener = EventListener::new(&target, "ping", move |_| s.set(s.get() + 1));
    assert_eq!(listener.event_type(), "ping");
    let ping = || {
        target
            .dispatch_event(&web_sys::Event::new("ping").unwrap())
            .unwrap();
    };
    ping();
    ping();
    assert_eq!(seen.get(), 2, "dispatch is synchronous");
    drop(listener);
    ping();
    assert_eq!(seen.get(), 2, "no call after the listener was dropped");
}

#[wasm_bindgen_test]
fn local_storage_round_trip() {
    let key = unique("monodit-bridge:test");
    assert_eq!(local_storage_get(&key), None);
    local_storage_set(&key, "value");
    assert_eq!(local_storage_get(&key).as_deref(), Some("value"));
    local_storage_set(&key, "");
    assert_eq!(local_storage_get(&key).as_deref(), Some(""));
}

#[wasm_bindgen_test]
async fn a_web_lock_runs_one_holder_at_a_time() {
    let name = unique("monodit-bridge-test-lock");
    let log = Rc::new(RefCell::new(Vec::<&str>::new()));
    let (l1, l2) = (log.clone(), log.clone());
    let first = with_lock(&name, async move {
        l1.borrow_mut().push("first:start");
        sleep(50).await;
        l1.borrow_mut().push("first:end");
    });
    let second = async {
        // Asks for the lock while the first holder has it.
        sleep(10).await;
        with_lock(&name, async move { l2.borrow_mut().push("second") }).await
    };
    futures::join!(first, second);
    assert_eq!(*log.borrow(), ["first:start", "first:end", "second"]);
    // The lock is free again.
    assert_eq!(with_lock(&name, async { 7 }).await, 7);
}

#[wasm_bindgen_test]
async fn a_channel_carries_text_to_the_other_members_and_closes_on_drop() {
    let name = unique("monodit-bridge-test-channel");
    let got_a = Rc::new(RefCell::new(Vec::<String>::new()));
    let got_b = Rc::new(RefCell::new(Vec::<String>::new()));
    let (ga, gb) = (got_a.clone(), got_b.clone());
    let a = Channel::open(&name, move |t| ga.borrow_mut().push(t)).unwrap();
    let b = Channel::open(&name, move |t| gb.borrow_mut().push(t)).unwrap();
    a.post("hello");
    wait_until("b receives a's message", || got_b.borrow().len() == 1).await;
    assert_eq!(*got_b.borrow(), ["hello"]);
    // A message that is not text is ignored (sent with a raw channel of the same name).
    let raw = web_sys::BroadcastChannel::new(&name).unwrap();
    raw.post_message(&wasm_bindgen::JsValue::from_f64(1.0))
        .unwrap();
    drop(b);
    raw.post_message(&"after".into()).unwrap();
    wait_until("a receives the raw text", || got_a.borrow().len() == 1).await;
    assert_eq!(
        *got_a.borrow(),
        ["after"],
        "a never hears its own post or a number"
    );
    sleep(50).await;
    assert_eq!(
        *got_b.borrow(),
        ["hello"],
        "a dropped channel hears nothing"
    );
    raw.close();
}

#[wasm_bindgen_test]
async fn channel_texts_of_one_task_leave_as_one_message_in_order() {
    let name = unique("monodit-test-batch");
    let got = Rc::new(RefCell::new(Vec::<String>::new()));
    let g = got.clone();
    let a = Channel::open(&name, |_| {}).unwrap();
    let b = Channel::open(&name, move |t| g.borrow_mut().push(t)).unwrap();
    // A raw member counts the messages that cross.
    let raw = web_sys::BroadcastChannel::new(&name).unwrap();
    let events = Rc::new(Cell::new(0));
    let e = events.clone();
    let on_raw = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
        move |_ev: web_sys::MessageEvent| e.set(e.get() + 1),
    );
    raw.set_onmessage(Some(wasm_bindgen::JsCast::unchecked_ref(on_raw.as_ref())));
    for t in ["one", "two", "three"] {
        a.post(t);
    }
    wait_until("b receives the three texts", || got.borrow().len() == 3).await;
    assert_eq!(*got.borrow(), ["one", "two", "three"]);
    sleep(50).await;
    assert_eq!(
        events.get(),
        1,
        "one postMessage for the task's three texts"
    );
    // A later task's text goes on its own; an array of texts from elsewhere is read in order
    // and its non-text entries are skipped.
    a.post("four");
    wait_until("b receives four", || got.borrow().len() == 4).await;
    assert_eq!(events.get(), 2);
    let mixed: js_sys::Array = [
        "five".into(),
        wasm_bindgen::JsValue::from_f64(6.0),
        "seven".into(),
    ]
    .into_iter()
    .collect();
    raw.post_message(&mixed).unwrap();
    wait_until("b receives the rest", || got.borrow().len() == 6).await;
    assert_eq!(got.borrow()[3..], ["four", "five", "seven"]);
    raw.close();
    drop(b);
}

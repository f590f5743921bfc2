//! Web Locks (`navigator.locks`), shared by every tab of the origin.

use futures::channel::oneshot;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// Runs `f` while holding the Web Lock `name`; runs it unlocked when Web Locks are absent.
pub async fn with_lock<T>(name: &str, f: impl Future<Output = T>) -> T {
    let locks = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &JsValue::from_str("locks")).ok())
        .filter(|l| l.is_object());
    let request = locks.as_ref().and_then(|l| {
        js_sys::Reflect::get(l, &JsValue::from_str("request"))
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()
    });
    let (Some(locks), Some(request)) = (locks, request) else {
        return f.await;
    };
    let release: Rc<RefCell<Option<js_sys::Function>>> = Rc::new(RefCell::new(None));
    let held = {
        let release = release.clone();
        js_sys::Promise::new(&mut |resolve, _| *release.borrow_mut() = Some(resolve))
    };
    let (acquired_tx, acquired_rx) = oneshot::channel::<()>();
    let acquired_tx = RefCell::new(Some(acquired_tx));
    let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| {
        if let Some(tx) = acquired_tx.borrow_mut().take() {
            let _ = tx.send(());
        }
        held.clone().into()
    });
    let requested = request.call2(&locks, &JsValue::from_str(name), granted.as_ref());
    let Ok(requested) = requested.and_then(|p| p.dyn_into::<js_sys::Promise>()) else {
        return f.await;
    };
    // The request's promise settles only after we release, so if it settles first the lock was
    // refused (e.g. a document that may not use locks): go on without it.
    let refused = wasm_bindgen_futures::JsFuture::from(requested);
    futures::pin_mut!(refused);
    let locked = matches!(
        futures::future::select(acquired_rx, refused).await,
        futures::future::Either::Left((Ok(()), _))
    );
    let out = f.await;
    if locked {
        if let Some(r) = release.borrow_mut().take() {
            let _ = r.call0(&JsValue::UNDEFINED);
        }
    }
    drop(granted);
    out
}

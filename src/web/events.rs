//! Event listeners that are removed when dropped.

use std::borrow::Cow;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventTarget};

/// An `addEventListener` registration that lives as long as this value: dropping it calls
/// `removeEventListener` with the same callback, so a torn-down owner leaves no handler
/// behind to call into freed state.
pub struct EventListener {
    target: EventTarget,
    name: Cow<'static, str>,
    callback: Closure<dyn FnMut(Event)>,
}

impl EventListener {
    /// Listens to `name` events on `target`; `None` when the target refuses the listener.
    pub fn new(
        target: &EventTarget,
        name: impl Into<Cow<'static, str>>,
        on_event: impl FnMut(Event) + 'static,
    ) -> Option<EventListener> {
        let name = name.into();
        let callback = Closure::<dyn FnMut(Event)>::new(on_event);
        target
            .add_event_listener_with_callback(&name, callback.as_ref().unchecked_ref())
            .ok()?;
        Some(EventListener {
            target: target.clone(),
            name,
            callback,
        })
    }

    /// The event name listened to.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for EventListener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(
            &self.name,
            self.callback.as_ref().unchecked_ref(),
        );
    }
}

//! BroadcastChannel: messages to the other tabs (and workers) of the same origin.

use js_sys::Array;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

/// A BroadcastChannel that carries text (JSON, for instance) and hands every text message it
/// receives to its handler. Dropping it detaches the handler and closes the channel.
///
/// The texts posted in one task leave together at its end, as one array of strings: a burst
/// of writes costs one `postMessage` instead of one each (each is a cross-process send).
pub struct Channel {
    channel: BroadcastChannel,
    queue: Rc<RefCell<Vec<String>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl Channel {
    /// Joins the channel `name`; `None` where BroadcastChannel is unavailable. Messages that
    /// are neither strings nor arrays of strings are ignored.
    pub fn open(name: &str, mut on_text: impl FnMut(String) + 'static) -> Option<Channel> {
        let channel = BroadcastChannel::new(name).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let data = e.data();
            if Array::is_array(&data) {
                for text in data.unchecked_into::<Array>().iter() {
                    if let Some(text) = text.as_string() {
                        on_text(text);
                    }
                }
            } else if let Some(text) = data.as_string() {
                on_text(text);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Channel {
            channel,
            queue: Rc::default(),
            _on_message: on_message,
        })
    }

    /// Posts `text` to every other member of the channel (never to this one), at the end of
    /// the task, in order.
    pub fn post(&self, text: &str) {
        let first = {
            let mut q = self.queue.borrow_mut();
            q.push(text.to_string());
            q.len() == 1
        };
        if !first {
            return;
        }
        let (channel, queue) = (self.channel.clone(), self.queue.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let texts = std::mem::take(&mut *queue.borrow_mut());
            // A closed channel (dropped meanwhile) throws: nothing is listening any more.
            let _ = match texts.as_slice() {
                [one] => channel.post_message(&JsValue::from_str(one)),
                _ => channel.post_message(
                    &texts
                        .iter()
                        .map(|t| JsValue::from_str(t))
                        .collect::<Array>(),
                ),
            };
        });
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

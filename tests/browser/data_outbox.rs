//! The durable outbox against the real server: a write made while the backend is unreachable
//! stays queued, survives closing and reopening the engine (IndexedDB reopened), and is
//! confirmed exactly once afterwards.
#![cfg(target_arch = "wasm32")]

use crate::data_support::*;
use monodit_bridge::http::Api;
use monodit_bridge::mirror::{db_name, STORE_OUTBOX};
use monodit_bridge::sync::{Engine, EventKind};
use monodit_core::api::Plan;
use monodit_core::ErrorCode;
use rexie::{Rexie, TransactionMode};
use serde_json::json;
use wasm_bindgen_test::*;

/// Outbox entries as stored in the user's IndexedDB (read through a second connection).
async fn stored_outbox(user: &str) -> Vec<serde_json::Value> {
    let db = Rexie::builder(&db_name(user)).build().await.unwrap();
    let tx = db
        .transaction(&[STORE_OUTBOX], TransactionMode::ReadOnly)
        .unwrap();
    let all = tx
        .store(STORE_OUTBOX)
        .unwrap()
        .get_all(None, None)
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();
    all.into_iter()
        .map(|v| serde_wasm_bindgen::from_value(v).unwrap())
        .collect()
}

#[wasm_bindgen_test]
async fn offline_write_survives_reopen_and_is_confirmed_once() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("offline");
    let b = doc_bucket(&id);

    // Offline phase: the same user, but the backend is a dead port.
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let offline = Engine::open_with_user(dead.clone(), &user).await;
    assert!(
        offline.is_persistent(),
        "IndexedDB is available in Chromium"
    );
    let w = DocRecorder::on(&offline, &id);
    let result = spawn_set(&offline, &b, json!({"text": "written offline"}));
    wait_until("a send attempt failed", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    wait_until("the optimistic event", || w.has(EventKind::Optimistic)).await;
    let e = w.last().unwrap();
    assert_eq!(
        (e.value, e.version, e.pending),
        (json!({"text": "written offline"}), 0, true)
    );
    assert!(result.borrow().is_none(), "offline, set() stays pending");
    assert_eq!(offline.pending_writes(), 1);
    let queued = stored_outbox(&user).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0]["bucketId"], json!(id));
    assert_eq!(queued[0]["value"], json!({"text": "written offline"}));
    // A read while offline shows the pending value.
    let snap = offline.doc_get(&b).await.unwrap();
    assert_eq!(
        (snap.value, snap.pending),
        (json!({"text": "written offline"}), true)
    );

    // The page goes away: the promise rejects CLOSED, the write stays on disk.
    offline.close();
    drop(offline);
    wait_until("set() settled by close", || result.borrow().is_some()).await;
    let closed = result.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(closed.code, ErrorCode::Closed);
    assert_eq!(stored_outbox(&user).await.len(), 1);
    assert_eq!(
        api.document_meta(&id).await.unwrap_err().code,
        ErrorCode::NotFound
    );

    // Back online, a new page: the outbox resumes and the write is confirmed.
    let online = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&online, &id);
    wait_until("confirmed after reopen", || w.has(EventKind::Confirmed)).await;
    let e = w.last().unwrap();
    assert_eq!(
        (e.kind, e.value, e.version, e.pending),
        (
            EventKind::Confirmed,
            json!({"text": "written offline"}),
            1,
            false
        )
    );
    assert!(stored_outbox(&user).await.is_empty());
    assert_eq!(online.pending_writes(), 0);
    online.close();

    // Applied exactly once, also after yet another reopen.
    let again = Engine::open(api.clone()).await.unwrap();
    sleep(200).await;
    assert_eq!(again.pending_writes(), 0);
    assert_eq!(
        api.counters().document_puts.get(),
        1,
        "sent once after coming back"
    );
    let meta = api.document_meta(&id).await.unwrap();
    assert_eq!(meta.version, 1);
    let snap = again.doc_get(&b).await.unwrap();
    assert_eq!(
        (snap.value, snap.version, snap.pending),
        (json!({"text": "written offline"}), 1, false)
    );
    again.close();
}

#[wasm_bindgen_test]
async fn network_failures_retry_with_backoff_and_never_roll_back() {
    // A transient failure keeps the write and retries it; another page confirms it later.
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("retry");
    let dead = Api::new("http://127.0.0.1:9", "x");
    let engine = Engine::open_with_user(dead.clone(), &user).await;
    let w = DocRecorder::on(&engine, &id);
    let result = spawn_set(&engine, &doc_bucket(&id), json!(42));
    wait_until("two failed attempts (backoff retries)", || {
        dead.counters().document_puts.get() >= 2
    })
    .await;
    assert!(result.borrow().is_none());
    assert!(
        !w.has(EventKind::Rollback),
        "network failures never roll back"
    );
    engine.close();
    // The other (online) page picks it up.
    let engine = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&engine, &id);
    wait_until("confirmed", || w.has(EventKind::Confirmed)).await;
    assert_eq!(api.document_meta(&id).await.unwrap().version, 1);
    engine.close();
}

#[wasm_bindgen_test]
async fn two_tabs_resuming_one_outbox_send_it_once() {
    let (api, user, token) = new_user_with_token(Plan::Pro).await;
    let id = unique("two-tabs");
    // A write left in the outbox by a page that went away offline.
    let dead = Api::new("http://127.0.0.1:9", "x");
    let offline = Engine::open_with_user(dead.clone(), &user).await;
    let w = DocRecorder::on(&offline, &id);
    spawn_set(&offline, &doc_bucket(&id), json!("once"));
    wait_until("optimistic", || w.has(EventKind::Optimistic)).await;
    wait_until("a failed attempt", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    offline.close();
    assert_eq!(stored_outbox(&user).await.len(), 1);

    // Two tabs of the same user open at the same time; both find the entry. The Web Lock
    // lets one send it; the other sees it settled and does not send it again.
    // Separate clients, so each tab's requests are counted on their own.
    let (tab_a_api, tab_b_api) = (Api::new(server(), &token), Api::new(server(), &token));
    let (a, b) = futures::join!(
        Engine::open(tab_a_api.clone()),
        Engine::open(tab_b_api.clone())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    wait_until("both tabs settled", || {
        a.pending_writes() == 0 && b.pending_writes() == 0
    })
    .await;
    assert!(stored_outbox(&user).await.is_empty());
    let puts = tab_a_api.counters().document_puts.get() + tab_b_api.counters().document_puts.get();
    assert_eq!(puts, 1, "one PUT across both tabs");
    assert_eq!(api.document_meta(&id).await.unwrap().version, 1);
    a.close();
    b.close();
}

#[wasm_bindgen_test]
async fn host_page_reloaded_offline_opens_from_the_mirror() {
    let (api, user, token) = new_user_with_token(Plan::Pro).await;
    let id = unique("reload-offline");
    let b = doc_bucket(&id);
    let online = Engine::open(api.clone()).await.unwrap();
    online.doc_set(&b, json!("before")).await.unwrap();
    online.close();

    // The page reloads with no network: `/v1/me` fails, the engine still opens for the
    // same user and answers from IndexedDB.
    let dead = Api::new("http://127.0.0.1:9", &token);
    let offline = Engine::open(dead.clone()).await.expect("opens offline");
    assert_eq!(offline.user_id(), user);
    let snap = offline.doc_get(&b).await.unwrap();
    assert_eq!((snap.value, snap.version), (json!("before"), 1));
    let w = DocRecorder::on(&offline, &id);
    spawn_set(&offline, &b, json!("edited offline"));
    wait_until("optimistic", || w.has(EventKind::Optimistic)).await;
    wait_until("a failed attempt", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    offline.close();

    // An unknown token offline has nothing to go on: the network error is returned.
    let stranger = Api::new("http://127.0.0.1:9", "never-seen-token");
    let err = Engine::open(stranger).await.err().expect("no user known");
    assert_eq!(err.code, ErrorCode::Network);

    let back = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&back, &id);
    wait_until("confirmed", || w.has(EventKind::Confirmed)).await;
    let meta = api.document_meta(&id).await.unwrap();
    assert_eq!(meta.version, 2);
    assert_eq!(
        back.doc_get(&b).await.unwrap().value,
        json!("edited offline")
    );
    back.close();
}

#[wasm_bindgen_test]
async fn deleting_a_bucket_drops_writes_still_waiting_for_it() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("deleted");
    let b = doc_bucket(&id);
    remote_put(&api, &id, json!("v1")).await;

    // Tab B is online and shows the bucket; tab A is offline with a write queued for it.
    // Tab B adopts that write from the shared outbox, but the server answers its PUTs 500
    // for now (fewer than the rollback bound), so the write is still waiting.
    let tab_b = Engine::open(api.clone()).await.unwrap();
    let wb = DocRecorder::on(&tab_b, &id);
    assert_eq!(tab_b.doc_get(&b).await.unwrap().value, json!("v1"));
    api.dev_set_faults(monodit_bridge::sync::MAX_SERVER_ERRORS - 1)
        .await
        .unwrap();
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let tab_a = Engine::open_with_user(dead.clone(), &user).await;
    let result = spawn_set(&tab_a, &b, json!("written offline"));
    wait_until("a send attempt failed", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    wait_until("tab B tried to send it too", || {
        api.counters().document_puts.get() >= 1
    })
    .await;
    assert_eq!(stored_outbox(&user).await.len(), 1);

    // The topology UI deletes the bucket from tab B.
    tab_b
        .delete_bucket(monodit_core::buckets::Backend::D1Json, &id)
        .await
        .expect("delete");
    assert!(
        stored_outbox(&user).await.is_empty(),
        "the queued write is dropped"
    );
    wait_until("tab A's set() settled", || result.borrow().is_some()).await;
    let err = result.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(tab_a.pending_writes(), 0);
    let last = wb.last().unwrap();
    assert_eq!((last.value, last.version), (json!(null), 0));
    assert_eq!(tab_b.doc_get(&b).await.unwrap().value, json!(null));
    tab_a.close();

    // A new page for the user finds nothing to send: the bucket stays deleted.
    api.dev_set_faults(0).await.unwrap();
    let reopened = Engine::open(api.clone()).await.unwrap();
    sleep(300).await;
    assert_eq!(reopened.pending_writes(), 0);
    assert_eq!(
        api.document_meta(&id).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    reopened.close();
    tab_b.close();
}

/// Kicks the outbox (skipping its backoff) until `done`, bounded.
async fn flush_until(engine: &Engine, what: &str, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        engine.recheck();
        sleep(50).await;
    }
    panic!("timed out waiting for {what}");
}

#[wasm_bindgen_test]
async fn a_few_server_errors_are_retried_but_a_persistent_one_rolls_back() {
    use monodit_bridge::sync::MAX_SERVER_ERRORS;
    let (api, _user) = new_user(Plan::Pro).await;
    let engine = Engine::open(api.clone()).await.unwrap();

    // Two 500s, then the server recovers: the write is retried and confirmed, never rolled back.
    let id = unique("flaky");
    let w = DocRecorder::on(&engine, &id);
    api.dev_set_faults(2).await.unwrap();
    let puts = api.counters().document_puts.get();
    let result = spawn_set(&engine, &doc_bucket(&id), json!("kept"));
    flush_until(&engine, "the flaky write settled", || {
        result.borrow().is_some()
    })
    .await;
    let snap = result.borrow_mut().take().unwrap().expect("confirmed");
    assert_eq!((snap.value, snap.version), (json!("kept"), 1));
    assert_eq!(api.counters().document_puts.get() - puts, 3);
    assert_eq!(w.kinds(), vec![EventKind::Optimistic, EventKind::Confirmed]);

    // A server that keeps failing one write: rolled back with INTERNAL after a bounded number
    // of attempts, instead of being retried forever.
    let id = unique("broken");
    let w = DocRecorder::on(&engine, &id);
    api.dev_set_faults(1000).await.unwrap();
    let puts = api.counters().document_puts.get();
    let result = spawn_set(&engine, &doc_bucket(&id), json!("lost"));
    flush_until(&engine, "the broken write settled", || {
        result.borrow().is_some()
    })
    .await;
    let err = result.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert_eq!(
        api.counters().document_puts.get() - puts,
        u64::from(MAX_SERVER_ERRORS)
    );
    assert_eq!(w.kinds(), vec![EventKind::Optimistic, EventKind::Rollback]);
    assert_eq!(w.last().unwrap().value, json!(null));
    assert_eq!(engine.pending_writes(), 0);
    api.dev_set_faults(0).await.unwrap();
    assert_eq!(
        api.document_meta(&id).await.unwrap_err().code,
        ErrorCode::NotFound
    );
    engine.close();
}

#[wasm_bindgen_test]
async fn a_burst_of_offline_writes_is_all_durable_and_sent_in_order() {
    let (api, user) = new_user(Plan::Pro).await;
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("burst{i}"))).collect();
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let offline = Engine::open_with_user(dead.clone(), &user).await;
    // 60 writes over 3 buckets in one burst: committed to IndexedDB in a few group commits.
    for n in 0..60 {
        spawn_set(&offline, &doc_bucket(&ids[n % 3]), json!({ "n": n }));
    }
    wait_until("every write persisted", || {
        offline.pending_writes() == 60 && dead.counters().document_puts.get() >= 1
    })
    .await;
    let mut stored = 0;
    for _ in 0..100 {
        stored = stored_outbox(&user).await.len();
        if stored == 60 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(stored, 60, "every write reached the durable outbox");
    offline.close();
    drop(offline);

    // A new page sends them; each bucket ends at its last write.
    let online = Engine::open(api.clone()).await.unwrap();
    wait_until("the outbox drained", || online.pending_writes() == 0).await;
    for (i, id) in ids.iter().enumerate() {
        let last = (0..60).filter(|n| n % 3 == i).max().unwrap();
        let doc = api.document(id, None).await.unwrap();
        match doc {
            monodit_bridge::http::DocumentFetch::Fresh(d) => {
                assert_eq!(d.value, json!({ "n": last }))
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(stored_outbox(&user).await.is_empty());
    online.close();
}

#[wasm_bindgen_test]
async fn a_write_made_just_before_its_bucket_is_deleted_never_comes_back() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("racing");
    let b = doc_bucket(&id);
    remote_put(&api, &id, json!("v1")).await;
    let engine = Engine::open(api.clone()).await.unwrap();
    // The set is still being committed to IndexedDB when the delete takes the outbox lock.
    let result = spawn_set(&engine, &b, json!("too late"));
    engine
        .delete_bucket(monodit_core::buckets::Backend::D1Json, &id)
        .await
        .expect("delete");
    wait_until("the set settled", || result.borrow().is_some()).await;
    let err = result.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = stored_outbox(&user).await.len();
        if left == 0 {
            break;
        }
        sleep(50).await;
    }
    assert_eq!(left, 0, "the dropped write is not in the durable outbox");
    engine.close();

    let reopened = Engine::open(api.clone()).await.unwrap();
    sleep(300).await;
    assert_eq!(reopened.pending_writes(), 0);
    assert_eq!(
        api.document_meta(&id).await.unwrap_err().code,
        ErrorCode::NotFound,
        "the bucket stays deleted"
    );
    reopened.close();
}

#[wasm_bindgen_test]
async fn an_open_tab_sends_the_writes_a_closed_tab_left_without_a_reload() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("left-behind");
    // Tab 2 is open (and stays open) before tab 1 writes.
    let tab2 = Engine::open(api.clone()).await.unwrap();
    let w2 = DocRecorder::on(&tab2, &id);
    // Tab 1 cannot reach the backend: its write is queued, then the tab closes.
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let tab1 = Engine::open_with_user(dead.clone(), &user).await;
    let result = spawn_set(&tab1, &doc_bucket(&id), json!("from the closed tab"));
    wait_until("tab 1 tried to send it", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    tab1.close();
    drop(tab1);
    wait_until("tab 1's set() settled CLOSED", || result.borrow().is_some()).await;

    // Tab 2, still open and never reloaded, sends it.
    wait_until("tab 2 confirmed tab 1's write", || {
        w2.has(EventKind::Confirmed)
    })
    .await;
    let last = w2.last().unwrap();
    assert_eq!(
        (last.value, last.version, last.pending),
        (json!("from the closed tab"), 1, false)
    );
    assert_eq!(api.document_meta(&id).await.unwrap().version, 1);
    assert!(stored_outbox(&user).await.is_empty());
    tab2.close();
}

#[wasm_bindgen_test]
async fn an_older_queued_write_never_overwrites_a_newer_saved_one() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("lost-update");
    let b = doc_bucket(&id);
    let tab2 = Engine::open(api.clone()).await.unwrap();
    let w2 = DocRecorder::on(&tab2, &id);
    // Tab 1 queues older text while its backend is unreachable, then closes.
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let tab1 = Engine::open_with_user(dead.clone(), &user).await;
    spawn_set(&tab1, &b, json!("older text from tab 1"));
    wait_until("tab 1 tried to send it", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    tab1.close();
    drop(tab1);
    // Tab 2 saves newer text, then reloads.
    let saved = tab2
        .doc_set(&b, json!("newer text from tab 2"))
        .await
        .unwrap();
    assert!(!saved.pending);
    wait_until("tab 2 has nothing pending", || tab2.pending_writes() == 0).await;
    assert!(w2.has(EventKind::Confirmed));
    tab2.close();
    drop(tab2);
    let reloaded = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&reloaded, &id);
    sleep(500).await;
    assert_eq!(reloaded.pending_writes(), 0);
    assert!(stored_outbox(&user).await.is_empty());
    let snap = reloaded.doc_get(&b).await.unwrap();
    assert_eq!(snap.value, json!("newer text from tab 2"));
    let fetched = api.document(&id, None).await.unwrap();
    let monodit_bridge::http::DocumentFetch::Fresh(doc) = fetched else {
        panic!("the document exists")
    };
    assert_eq!(doc.value, json!("newer text from tab 2"));
    assert!(
        !w.kinds().contains(&EventKind::Optimistic),
        "nothing older is shown again"
    );
    reloaded.close();
}

#[wasm_bindgen_test]
async fn a_stale_replay_rolls_back_with_conflict_instead_of_overwriting() {
    let (api, user) = new_user(Plan::Pro).await;
    let id = unique("stale");
    let b = doc_bucket(&id);
    remote_put(&api, &id, json!("v1")).await;
    // This browser has read version 1.
    let page = Engine::open(api.clone()).await.unwrap();
    assert_eq!(page.doc_get(&b).await.unwrap().version, 1);
    page.close();
    drop(page);
    // Offline, it edits version 1 and the page goes away.
    let dead = Api::new("http://127.0.0.1:9", "token-unused-offline");
    let offline = Engine::open_with_user(dead.clone(), &user).await;
    spawn_set(&offline, &b, json!("offline edit of v1"));
    wait_until("a failed attempt", || {
        dead.counters().document_puts.get() >= 1
    })
    .await;
    offline.close();
    drop(offline);
    // Meanwhile another device saves version 2.
    remote_put(&api, &id, json!("device 2's edit")).await;

    // Back online: the replay is based on version 1, the server is at 2: it is stale.
    let back = Engine::open(api.clone()).await.unwrap();
    let w = DocRecorder::on(&back, &id);
    wait_until("the stale write settled", || back.pending_writes() == 0).await;
    wait_until("the rollback", || w.has(EventKind::Rollback)).await;
    let last = w.last().unwrap();
    assert_eq!(
        (last.kind, last.value, last.version, last.pending),
        (EventKind::Rollback, json!("device 2's edit"), 2, false)
    );
    assert_eq!(api.document_meta(&id).await.unwrap().version, 2);
    assert!(stored_outbox(&user).await.is_empty());
    assert_eq!(
        back.doc_get(&b).await.unwrap().value,
        json!("device 2's edit")
    );
    back.close();
}

//! Plugin key-value storage, `ctx.kv` (seed 003: `settings:` and `state:` keys) over HTTP.

use crate::support::kv::*;
use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn a_database_from_before_kv_upgrades_in_place() {
    // Both servers use one directory of this test's (each Srv removes only its own).
    let dir = tempfile::tempdir().unwrap();
    let (db, objects) = (dir.path().join("db.sqlite"), dir.path().join("objects"));
    let at = |c: &mut monodit_server::Config| {
        c.db_path = db.clone();
        c.objects = objects.to_string_lossy().to_string();
    };
    let s = Srv::start_with(at).await;
    let t = s.pro().await;
    s.put_doc(&t, "notes-1", json!("keep me")).await.ok();
    let used = s.used(&t).await;
    s.stop().await;
    // Make it look like a database written before kv: no table, no usage column.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("DROP TABLE plugin_kv; ALTER TABLE users DROP COLUMN kv_bytes;")
            .unwrap();
    }
    let s = Srv::start_with(at).await;
    assert_eq!(
        s.get("/v1/documents/notes-1", &t).await.ok()["value"],
        "keep me"
    );
    assert_eq!(kv_bytes(&s, &t).await, 0);
    kput(&s, &t, "forms", "settings:a", json!("x")).await.ok();
    assert_eq!(kv_bytes(&s, &t).await, 3);
    assert_eq!(s.used(&t).await, used + 3);
    s.stop().await;
}

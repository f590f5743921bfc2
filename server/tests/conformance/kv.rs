//! Plugin key-value storage, `ctx.kv` (seed 003: `settings:` and `state:` keys) over HTTP.

use crate::support::kv::*;
use crate::support::*;
use monodit_core::kv::{MAX_KEY_BYTES, MAX_LIST, MAX_LIST_BYTES, MAX_VALUE_BYTES};
use reqwest::Method;
use serde_json::{json, Value};

/// A JSON string value whose compact encoding is exactly `n` bytes (n ≥ 2).
fn sized(n: usize) -> Value {
    json!("x".repeat(n - 2))
}

async fn kget(s: &Srv, t: &str, plugin: &str, key: &str) -> Resp {
    s.get(&format!("/v1/kv/{plugin}/{}", enc(key)), t).await
}

async fn kdel(s: &Srv, t: &str, plugin: &str, key: &str) -> Resp {
    s.call(
        Method::DELETE,
        &format!("/v1/kv/{plugin}/{}", enc(key)),
        Some(t),
        None,
    )
    .await
}

async fn klist(s: &Srv, t: &str, plugin: &str, prefix: &str) -> Resp {
    s.send(
        s.req(Method::GET, &format!("/v1/kv/{plugin}"), Some(t))
            .query(&[("prefix", prefix)]),
    )
    .await
}

fn keys(list: &Value) -> Vec<String> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn set_get_overwrite_delete_round_trip() {
    let s = Srv::start().await;
    let t = s.pro().await;
    kget(&s, &t, "forms", "settings:theme")
        .await
        .expect_err("NOT_FOUND");
    let v1 = json!({"mode": "dark"});
    let put = kput(&s, &t, "forms", "settings:theme", v1.clone()).await;
    assert_eq!(put.ok(), &json!({"key": "settings:theme", "value": v1}));
    // Percent-encoded and raw ':' name the same key.
    let got = s.get("/v1/kv/forms/settings%3Atheme", &t).await;
    assert_eq!(got.ok()["value"], v1);
    let got = s.get("/v1/kv/forms/settings:theme", &t).await;
    assert_eq!(got.ok(), &json!({"key": "settings:theme", "value": v1}));
    let n1 = v1.to_string().len() as u64;
    assert_eq!(s.used(&t).await, n1);
    assert_eq!(kv_bytes(&s, &t).await, n1);

    // Overwrite: the answer and a read show the new value; usage follows the new size.
    let v2 = json!({"mode": "light", "accent": "#ff8800", "fontSize": 14});
    assert_eq!(
        kput(&s, &t, "forms", "settings:theme", v2.clone())
            .await
            .ok()["value"],
        v2
    );
    assert_eq!(
        kget(&s, &t, "forms", "settings:theme").await.ok()["value"],
        v2
    );
    let n2 = v2.to_string().len() as u64;
    assert_eq!(s.used(&t).await, n2);

    // Any JSON is a value, null included; keys may hold '/', '?', '%' and non-ASCII.
    for (key, value) in [
        ("state:lastRun", json!(null)),
        ("state:a/b?c%d", json!([1, 2.5, "ü"])),
        ("state:ключ", json!(false)),
    ] {
        kput(&s, &t, "forms", key, value.clone()).await.ok();
        assert_eq!(
            kget(&s, &t, "forms", key).await.ok(),
            &json!({"key": key, "value": value})
        );
    }
    let listed = klist(&s, &t, "forms", "state:").await;
    assert_eq!(
        keys(listed.ok()),
        ["state:a/b?c%d", "state:lastRun", "state:ключ"]
    );

    // Delete: true once, then false; the bytes come back.
    assert_eq!(
        kdel(&s, &t, "forms", "settings:theme").await.ok(),
        &json!({"deleted": true})
    );
    assert_eq!(
        kdel(&s, &t, "forms", "settings:theme").await.ok(),
        &json!({"deleted": false})
    );
    kget(&s, &t, "forms", "settings:theme")
        .await
        .expect_err("NOT_FOUND");
    for key in ["state:lastRun", "state:a/b?c%d", "state:ключ"] {
        assert_eq!(kdel(&s, &t, "forms", key).await.ok()["deleted"], true);
    }
    assert_eq!(s.used(&t).await, 0);
    assert_eq!(kv_bytes(&s, &t).await, 0);
    s.stop().await;
}

#[tokio::test]
async fn prefixes_list_in_key_order_and_have_no_wildcards() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let all = [
        "settings:theme",
        "settings:B",
        "settings:a",
        "settings:ü",
        "settings;next",
        "settingsX",
        "state:cursor",
        "state:lastRun",
        "a%_1",
        "a%_2",
        "A%_1",
        "ab_1",
        "a%x1",
        "aa_1",
        "a%%",
        "a_%",
        "a_b",
        "axb",
    ];
    for (i, key) in all.iter().enumerate() {
        kput(&s, &t, "forms", key, json!(i)).await.ok();
    }
    let list = klist(&s, &t, "forms", "settings:").await;
    // Key order is UTF-8 byte order: uppercase before lowercase, 'ü' last.
    assert_eq!(
        keys(list.ok()),
        ["settings:B", "settings:a", "settings:theme", "settings:ü"]
    );
    assert_eq!(list.body["hasMore"], false);
    assert_eq!(
        list.body["entries"][1],
        json!({"key": "settings:a", "value": 2})
    );
    assert_eq!(
        keys(klist(&s, &t, "forms", "state:").await.ok()),
        ["state:cursor", "state:lastRun"]
    );
    // '%' and '_' are plain characters (LIKE would also have matched ab_1, a%x1, aa_1 and,
    // being case-insensitive, A%_1).
    assert_eq!(
        keys(klist(&s, &t, "forms", "a%_").await.ok()),
        ["a%_1", "a%_2"]
    );
    assert_eq!(
        keys(klist(&s, &t, "forms", "a_").await.ok()),
        ["a_%", "a_b"]
    );
    assert_eq!(
        keys(klist(&s, &t, "forms", "a%").await.ok()),
        ["a%%", "a%_1", "a%_2", "a%x1"]
    );
    assert_eq!(
        keys(klist(&s, &t, "forms", "settings:a").await.ok()),
        ["settings:a"]
    );
    assert!(keys(klist(&s, &t, "forms", "zzz").await.ok()).is_empty());
    // No prefix (absent or empty) lists everything, sorted.
    let mut sorted: Vec<String> = all.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(keys(s.get("/v1/kv/forms", &t).await.ok()), sorted);
    assert_eq!(keys(klist(&s, &t, "forms", "").await.ok()), sorted);
    s.stop().await;
}

#[tokio::test]
async fn lists_stop_at_max_list_entries_with_has_more() {
    let s = Srv::start().await;
    let t = s.pro().await;
    // MAX_LIST + 1 keys, written 8 at a time (the writer serialises them anyway).
    let keys_all: Vec<String> = (0..=MAX_LIST).map(|i| format!("state:{i:05}")).collect();
    for chunk in keys_all.chunks(8) {
        let puts = chunk
            .iter()
            .map(|k| kput(&s, &t, "forms", k, json!(1)))
            .collect::<Vec<_>>();
        for r in futures::future::join_all(puts).await {
            r.ok();
        }
    }
    let list = klist(&s, &t, "forms", "state:").await;
    let got = keys(list.ok());
    assert_eq!(got.len(), MAX_LIST);
    assert_eq!(got[..], keys_all[..MAX_LIST]);
    assert_eq!(list.body["hasMore"], true);
    // A narrower prefix reaches the rest.
    let rest = klist(&s, &t, "forms", &format!("state:{MAX_LIST:05}")).await;
    assert_eq!(keys(rest.ok()), [format!("state:{MAX_LIST:05}")]);
    assert_eq!(rest.body["hasMore"], false);
    // So does the next page: `after` = the last key of this one.
    let last = got.last().unwrap();
    let next = s
        .get(
            &format!(
                "/v1/kv/forms?prefix=state%3A&after={}",
                last.replace(':', "%3A")
            ),
            &t,
        )
        .await;
    assert_eq!(keys(next.ok()), [format!("state:{MAX_LIST:05}")]);
    assert_eq!(next.body["hasMore"], false);
    // `after` only ever narrows: inside the prefix, never past its end.
    let none = s.get("/v1/kv/forms?prefix=state%3A&after=zzz", &t).await;
    assert!(keys(none.ok()).is_empty());
    // Exactly MAX_LIST matches: no more.
    kdel(&s, &t, "forms", &keys_all[0]).await.ok();
    let list = klist(&s, &t, "forms", "state:").await;
    assert_eq!(keys(list.ok()).len(), MAX_LIST);
    assert_eq!(list.body["hasMore"], false);
    s.stop().await;
}

#[tokio::test]
async fn lists_stop_before_their_values_pass_the_byte_budget() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let per_answer = MAX_LIST_BYTES / MAX_VALUE_BYTES;
    for i in 0..=per_answer {
        kput(
            &s,
            &t,
            "forms",
            &format!("state:{i:03}"),
            sized(MAX_VALUE_BYTES),
        )
        .await
        .ok();
    }
    let list = klist(&s, &t, "forms", "state:").await;
    assert_eq!(keys(list.ok()).len(), per_answer);
    assert_eq!(list.body["hasMore"], true);
    s.stop().await;
}

#[tokio::test]
async fn quota_counts_values_refuses_growth_that_does_not_fit_and_refunds_shrinks() {
    let s = Srv::start().await;
    let t = s.pro_with_limit(1000).await;
    kput(&s, &t, "forms", "settings:a", sized(500)).await.ok();
    assert_eq!(s.used(&t).await, 500);

    // A new key that does not fit: QUOTA_EXCEEDED, nothing written, nothing charged.
    let r = kput(&s, &t, "forms", "settings:b", sized(600)).await;
    r.expect_err("QUOTA_EXCEEDED");
    assert_eq!(r.body["detail"]["requestedBytes"], 600);
    kget(&s, &t, "forms", "settings:b")
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(s.used(&t).await, 500);

    // An overwrite reserves only its growth: 500 → 900 fits a 1000-byte limit.
    kput(&s, &t, "forms", "settings:a", sized(900)).await.ok();
    assert_eq!(s.used(&t).await, 900);
    // 900 → 1100 does not (200 more, 100 left): the old value stays.
    let r = kput(&s, &t, "forms", "settings:a", sized(1100)).await;
    r.expect_err("QUOTA_EXCEEDED");
    assert_eq!(r.body["detail"]["requestedBytes"], 200);
    assert_eq!(
        kget(&s, &t, "forms", "settings:a").await.ok()["value"],
        sized(900)
    );
    assert_eq!(s.used(&t).await, 900);

    // A smaller value refunds the difference; deletion refunds the rest.
    kput(&s, &t, "forms", "settings:a", sized(100)).await.ok();
    assert_eq!(s.used(&t).await, 100);
    assert_eq!(kv_bytes(&s, &t).await, 100);
    kput(&s, &t, "forms", "settings:b", sized(600)).await.ok();
    assert_eq!(s.used(&t).await, 700);
    kdel(&s, &t, "forms", "settings:b").await.ok();
    kdel(&s, &t, "forms", "settings:a").await.ok();
    assert_eq!(s.used(&t).await, 0);

    // KV shares the quota with documents and collections.
    kput(&s, &t, "forms", "settings:a", sized(900)).await.ok();
    s.put_doc(&t, "d", sized(200))
        .await
        .expect_err("QUOTA_EXCEEDED");
    s.stop().await;
}

#[tokio::test]
async fn values_above_the_limit_and_the_free_plan_are_refused() {
    let s = Srv::start().await;
    let t = s.pro().await;
    kput(&s, &t, "forms", "state:big", sized(MAX_VALUE_BYTES))
        .await
        .ok();
    kput(&s, &t, "forms", "state:big", sized(MAX_VALUE_BYTES + 1))
        .await
        .expect_err("PAYLOAD_TOO_LARGE");
    assert_eq!(s.used(&t).await, MAX_VALUE_BYTES as u64);

    // Free: PLAN_REQUIRED on every route, reads included, as collections answer.
    let free = s.user("free", 0).await;
    kput(&s, &free, "forms", "settings:a", json!(1))
        .await
        .expect_err("PLAN_REQUIRED");
    kget(&s, &free, "forms", "settings:a")
        .await
        .expect_err("PLAN_REQUIRED");
    kdel(&s, &free, "forms", "settings:a")
        .await
        .expect_err("PLAN_REQUIRED");
    klist(&s, &free, "forms", "")
        .await
        .expect_err("PLAN_REQUIRED");
    // No token: UNAUTHENTICATED before anything else is looked at.
    s.call(Method::GET, "/v1/kv/forms/settings:a", None, None)
        .await
        .expect_err("UNAUTHENTICATED");
    s.call(Method::GET, "/v1/kv/NOT_VALID", None, None)
        .await
        .expect_err("UNAUTHENTICATED");
    s.stop().await;
}

#[tokio::test]
async fn other_users_and_other_plugins_never_see_the_entries() {
    let s = Srv::start().await;
    let a = s.pro().await;
    let b = s.pro().await;
    kput(&s, &a, "forms", "settings:theme", json!("dark"))
        .await
        .ok();
    // Another user: nothing to read, list or delete.
    kget(&s, &b, "forms", "settings:theme")
        .await
        .expect_err("NOT_FOUND");
    assert!(keys(klist(&s, &b, "forms", "").await.ok()).is_empty());
    assert_eq!(
        kdel(&s, &b, "forms", "settings:theme").await.ok()["deleted"],
        false
    );
    // The same key for that user is its own entry.
    kput(&s, &b, "forms", "settings:theme", json!("light"))
        .await
        .ok();
    // Another plugin of the same user: a separate namespace.
    kget(&s, &a, "forms2", "settings:theme")
        .await
        .expect_err("NOT_FOUND");
    assert!(keys(klist(&s, &a, "forms2", "").await.ok()).is_empty());
    assert!(keys(klist(&s, &a, "form", "").await.ok()).is_empty());
    assert_eq!(
        kdel(&s, &a, "forms2", "settings:theme").await.ok()["deleted"],
        false
    );
    assert_eq!(
        kget(&s, &a, "forms", "settings:theme").await.ok()["value"],
        "dark"
    );
    assert_eq!(
        kget(&s, &b, "forms", "settings:theme").await.ok()["value"],
        "light"
    );
    assert_eq!(s.used(&a).await, 6);
    assert_eq!(s.used(&b).await, 7);
    s.stop().await;
}

#[tokio::test]
async fn hostile_keys_plugin_ids_and_bodies_are_coded_client_errors() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let client_err = |r: &Resp, code: &str| {
        assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
        r.expect_err(code);
    };
    // Keys: the longest works, one byte more, control characters, invalid UTF-8 do not.
    let longest = "k".repeat(MAX_KEY_BYTES);
    kput(&s, &t, "forms", &longest, json!(1)).await.ok();
    kput(
        &s,
        &t,
        "forms",
        &format!("ü{}", "k".repeat(MAX_KEY_BYTES - 2)),
        json!(1),
    )
    .await
    .ok();
    let too_long = "k".repeat(MAX_KEY_BYTES + 1);
    for key in [
        too_long.as_str(),
        "a\u{0}b",
        "settings:\n",
        "\u{7f}",
        "a\u{85}",
        "\t",
    ] {
        client_err(
            &kput(&s, &t, "forms", key, json!(1)).await,
            "INVALID_ARGUMENT",
        );
        client_err(&kget(&s, &t, "forms", key).await, "INVALID_ARGUMENT");
        client_err(&kdel(&s, &t, "forms", key).await, "INVALID_ARGUMENT");
        client_err(&klist(&s, &t, "forms", key).await, "INVALID_ARGUMENT");
    }
    for path in ["/v1/kv/forms/%FF", "/v1/kv/forms/a%C3", "/v1/kv/%FF/a"] {
        let r = s
            .call(Method::PUT, path, Some(&t), Some(json!({"value": 1})))
            .await;
        assert!(
            r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body["code"].is_string(), "{path}: {}", r.body);
    }
    // The empty key: no route matches, but the answer says what is wrong with it.
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let r = s
            .call(method, "/v1/kv/forms/", Some(&t), Some(json!({"value": 1})))
            .await;
        client_err(&r, "INVALID_ARGUMENT");
    }
    for path in ["/v1/kv/", "/v1/kv//", "/v1/kv/forms/a/b", "/v1/kv/forms/a/"] {
        client_err(&s.get(path, &t).await, "NOT_FOUND");
    }
    // Plugin ids follow the widget id grammar of collections.
    let long_id = "p".repeat(65);
    for plugin in [
        "Forms",
        "_forms",
        "-a",
        "a%20b",
        "a%2Fb",
        "%C3%BC",
        long_id.as_str(),
    ] {
        client_err(
            &kput(&s, &t, plugin, "settings:a", json!(1)).await,
            "INVALID_ARGUMENT",
        );
        client_err(
            &kget(&s, &t, plugin, "settings:a").await,
            "INVALID_ARGUMENT",
        );
        client_err(
            &kdel(&s, &t, plugin, "settings:a").await,
            "INVALID_ARGUMENT",
        );
        client_err(&klist(&s, &t, plugin, "").await, "INVALID_ARGUMENT");
    }
    // Bodies: not JSON, not an object, no `value`, wrong shape.
    for body in [
        "",
        "{",
        "not json",
        "null",
        "[]",
        "{}",
        "{\"valu\": 1}",
        "\u{0}",
    ] {
        let r = s
            .send_raw_json(Method::PUT, "/v1/kv/forms/settings:a", &t, body)
            .await;
        client_err(&r, "INVALID_ARGUMENT");
    }
    let r = s
        .send(
            s.req(Method::PUT, "/v1/kv/forms/settings:a", Some(&t))
                .body(vec![b' '; 9 * 1024 * 1024]),
        )
        .await;
    client_err(&r, "PAYLOAD_TOO_LARGE");
    // Query strings: a repeated or malformed prefix is refused, not guessed.
    let r = s
        .send(s.req(Method::GET, "/v1/kv/forms?prefix=a&prefix=b", Some(&t)))
        .await;
    client_err(&r, "INVALID_ARGUMENT");
    // None of it wrote anything.
    kget(&s, &t, "forms", "settings:a")
        .await
        .expect_err("NOT_FOUND");
    assert_eq!(keys(klist(&s, &t, "forms", "").await.ok()).len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn missing_empty_answers_204_for_an_unset_key() {
    let s = Srv::start().await;
    let t = s.pro().await;
    let path = "/v1/kv/forms/settings%3Afilter?missing=empty";
    let r = s.get(path, &t).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.body);
    assert!(r.bytes.is_empty());
    // Without the parameter an unset key is still 404 (older clients rely on it).
    s.get("/v1/kv/forms/settings%3Afilter", &t)
        .await
        .expect_err("NOT_FOUND");
    kput(&s, &t, "forms", "settings:filter", json!({"q": "x"}))
        .await
        .ok();
    let r = s.get(path, &t).await;
    assert_eq!(
        r.ok(),
        &json!({"key": "settings:filter", "value": {"q": "x"}})
    );
    // Only "empty" is a value of `missing`; bad keys are still refused.
    s.get("/v1/kv/forms/settings%3Afilter?missing=yes", &t)
        .await
        .expect_err("INVALID_ARGUMENT");
    s.get("/v1/kv/forms/settings%3A%01?missing=empty", &t)
        .await
        .expect_err("INVALID_ARGUMENT");
    // The plan gate comes first.
    let free = s.user("free", 0).await;
    s.get(path, &free).await.expect_err("PLAN_REQUIRED");
    s.stop().await;
}

//! Server benchmark (issue 3 "Speed"; a measurement, not a test).
//!
//! Starts monodit-server in-process on 127.0.0.1:0 with a temporary database, fills it, then
//! drives it over real HTTP from a load client (concurrent keep-alive connections) and runs the
//! same SQL on raw rusqlite in the same run, so the numbers are ratios on the same machine:
//!
//! 1. `POST /v1/meta` for 100 document buckets, vs the 100 SELECTs it runs;
//! 2. an indexed collection query over 100,000 items (`where formId, orderBy createdAt desc,
//!    limit 20`, served by the `["formId","createdAt"]` expression index), vs core's planned
//!    SQL on rusqlite.
//!
//! Every phase is bounded in time and count. Run with `bash bench/server-bench.sh` (release
//! build); it writes `bench/server-results.md`.
//!
//! Usage: `server-bench [--out PATH] [--seconds N] [--concurrency N] [--items N]`

use monodit_server::{start, Config};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Args {
    out: Option<String>,
    seconds: u64,
    concurrency: usize,
    items: usize,
}

fn args() -> Args {
    let mut a = Args {
        out: None,
        seconds: 5,
        concurrency: 8,
        items: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--out" => a.out = Some(v),
            "--seconds" => a.seconds = v.parse().unwrap_or(5).clamp(1, 60),
            "--concurrency" => a.concurrency = v.parse().unwrap_or(8).clamp(1, 64),
            "--items" => a.items = v.parse().unwrap_or(100_000).clamp(1000, 1_000_000),
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

/// Latency summary of one scenario.
struct Stats {
    name: String,
    requests: usize,
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn summarize(name: &str, mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort();
    let pick = |q: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6
        }
    };
    Stats {
        name: name.to_string(),
        requests: lat.len(),
        per_sec: lat.len() as f64 / wall.as_secs_f64(),
        p50_us: pick(0.50),
        p99_us: pick(0.99),
    }
}

const MAX_REQUESTS: usize = 200_000;
const STATUSES: [&str; 3] = ["pending", "approved", "spam"];

async fn load(
    name: &str,
    seconds: u64,
    concurrency: usize,
    make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
) -> Stats {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, make) = (client.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline && lat.len() < MAX_REQUESTS / concurrency {
                let t = Instant::now();
                let r = make(&client).send().await.expect("request");
                assert!(r.status().is_success(), "{}", r.status());
                let _ = r.bytes().await.expect("body");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load task"));
    }
    summarize(name, all, started.elapsed())
}

/// Runs `f` on `threads` OS threads, each with its own read-only connection, until the time is up.
fn raw(
    name: &str,
    db: &std::path::Path,
    seconds: u64,
    threads: usize,
    f: impl Fn(&rusqlite::Connection) + Send + Sync + Clone + 'static,
) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (db, f) = (db.to_path_buf(), f.clone());
            std::thread::spawn(move || {
                let conn = rusqlite::Connection::open_with_flags(
                    &db,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open");
                let mut lat = Vec::new();
                while Instant::now() < deadline && lat.len() < MAX_REQUESTS / threads {
                    let t = Instant::now();
                    f(&conn);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("thread"));
    }
    summarize(name, all, started.elapsed())
}

fn to_db(v: &monodit_core::query::SqlValue) -> rusqlite::types::Value {
    use monodit_core::query::SqlValue as S;
    use rusqlite::types::Value as D;
    match v {
        S::Null => D::Null,
        S::Integer(i) => D::Integer(*i),
        S::Real(f) => D::Real(*f),
        S::Text(t) => D::Text(t.clone()),
        S::Bool(b) => D::Integer(i64::from(*b)),
    }
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("bench.sqlite");
    // The server gets its own runtime (its own worker threads); the load client another.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::new(
        &db_path,
        dir.path().join("objects").to_string_lossy().to_string(),
    );
    let server = server_rt.block_on(start(config)).expect("server");
    let base = server.base_url.clone();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let token = "dev-demo-token".to_string();
    let results = client_rt.block_on(async {
        let http = reqwest::Client::new();
        // Fill: 100 documents, the forms plugin, and `items` submissions in batches of 1000.
        let started = Instant::now();
        let ids: Vec<String> = (0..100).map(|i| format!("doc-{i}")).collect();
        for id in &ids {
            let r = http
                .put(format!("{base}/v1/documents/{id}"))
                .bearer_auth(&token)
                .json(&json!({"value": {"text": id}, "schemaId": "notes.plaintext", "schemaVersion": 1}))
                .send()
                .await
                .expect("put");
            assert!(r.status().is_success());
        }
        let manifest = json!({"id": "forms", "storage": {"submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]}}});
        let r = http
            .put(format!("{base}/v1/instances/bench"))
            .bearer_auth(&token)
            .json(&json!({"kind": "widget", "manifest": manifest}))
            .send()
            .await
            .expect("register");
        assert!(r.status().is_success());
        // The server builds declared indexes in the background (store::indexes): wait
        // (bounded) for all five before measuring an indexed query.
        let built = || -> i64 {
            rusqlite::Connection::open(&db_path)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM plugin_indexes", [], |r| r.get(0)))
                .unwrap_or(0)
        };
        for _ in 0..600 {
            if built() == 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(built(), 5, "the forms indexes were not built within 30 s");
        for batch in 0..a.items.div_ceil(1000) {
            let items: Vec<Value> = (batch * 1000..((batch + 1) * 1000).min(a.items))
                .map(|i| json!({"id": format!("sub_{i:07}"), "data": {"formId": format!("f{}", i % 100), "status": STATUSES[i % 3], "createdAt": format!("2024-{:07}", i), "email": "user@example.com"}}))
                .collect();
            let r = http
                .post(format!("{base}/v1/collections/forms/submissions/putMany"))
                .bearer_auth(&token)
                .json(&json!({"items": items}))
                .send()
                .await
                .expect("putMany");
            assert!(r.status().is_success(), "{}", r.status());
        }
        eprintln!("filled in {:.1}s", started.elapsed().as_secs_f64());
        // Statistics as the hourly PRAGMA optimize would leave them.
        rusqlite::Connection::open(&db_path)
            .and_then(|c| c.execute_batch("ANALYZE"))
            .expect("analyze");

        let meta_body = json!({"documents": ids});
        let (b1, t1, m1) = (base.clone(), token.clone(), meta_body.clone());
        let meta = load("HTTP POST /v1/meta (100 documents)", a.seconds, a.concurrency, move |c| {
            c.post(format!("{b1}/v1/meta")).bearer_auth(&t1).json(&m1)
        })
        .await;
        let query_body = json!({"where": {"formId": "f7"}, "orderBy": {"createdAt": "desc"}, "limit": 20});
        let (b2, t2, q2) = (base.clone(), token.clone(), query_body.clone());
        let query = load(&format!("HTTP collection query ({} items, indexed, limit 20)", a.items), a.seconds, a.concurrency, move |c| {
            c.post(format!("{b2}/v1/collections/forms/submissions/query")).bearer_auth(&t2).json(&q2)
        })
        .await;
        (meta, query, query_body)
    });
    let (meta, query, query_body) = results;

    // The same SQL on raw rusqlite, same database, same thread count as server workers.
    let user_id: String = rusqlite::Connection::open(&db_path)
        .and_then(|c| c.query_row("SELECT id FROM users LIMIT 1", [], |r| r.get(0)))
        .expect("user");
    let uid = user_id.clone();
    let raw_meta = raw(
        "rusqlite: the 100 meta SELECTs",
        &db_path,
        a.seconds,
        2,
        move |c| {
            let tx = c.unchecked_transaction().expect("tx");
            let mut stmt = tx
            .prepare_cached("SELECT version, size, updated_at FROM documents WHERE user_id = ?1 AND bucket_id = ?2")
            .expect("prepare");
            for i in 0..100 {
                let id = format!("doc-{i}");
                let _: (i64, i64, i64) = stmt
                    .query_row(rusqlite::params![uid, id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })
                    .expect("row");
            }
        },
    );
    let decl = monodit_core::manifest::Manifest::parse(&json!({"id": "forms", "storage": {"submissions": {"indexes": ["formId", "status", "createdAt", ["formId", "createdAt"], ["status", "createdAt"]]}}}))
        .expect("manifest")
        .collection("submissions")
        .expect("decl")
        .clone();
    let opts = monodit_core::query::QueryOptions::from_json(&query_body).expect("opts");
    let vq = monodit_core::query::validate(&opts, &decl).expect("valid");
    let plan = monodit_core::query::plan_query("forms", "submissions", &user_id, &vq, &[0; 32])
        .expect("plan");
    let (sql, params) = (plan.sql.clone(), plan.params.clone());
    let raw_query = raw(
        "rusqlite: the planned query SQL",
        &db_path,
        a.seconds,
        2,
        move |c| {
            let mut stmt = c.prepare_cached(&sql).expect("prepare");
            let n = stmt
                .query_map(rusqlite::params_from_iter(params.iter().map(to_db)), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .expect("query")
                .count();
            assert_eq!(n, 21);
        },
    );
    let eqp: Vec<String> = rusqlite::Connection::open(&db_path)
        .and_then(|c| {
            let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {}", plan.sql))?;
            let rows = s
                .query_map(
                    rusqlite::params_from_iter(plan.params.iter().map(to_db)),
                    |r| r.get::<_, String>(3),
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .expect("explain");
    drop(server_rt.block_on(server.stop()));

    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let row = |s: &Stats| {
        format!(
            "| {} | {} | {:.0} | {:.0} | {:.0} |",
            s.name, s.requests, s.per_sec, s.p50_us, s.p99_us
        )
    };
    let md = format!(
        "# Server benchmark (issue 3 \"Speed\")\n\n\
         Generated by `bash bench/server-bench.sh` ({}s per scenario, {} concurrent HTTP connections, \
         {} items, {} logical cores shared by server, client and the rusqlite baseline; the server and the \
         load client run in one process on separate 2-thread runtimes, over real HTTP on 127.0.0.1).\n\n\
         | scenario | requests | per second | p50 µs | p99 µs |\n|---|---:|---:|---:|---:|\n{}\n{}\n{}\n{}\n\n\
         Ratios (server over raw rusqlite, same SQL, 2 threads): batch meta {:.2}x, indexed query {:.2}x \
         of the raw rate.\n\n\
         Query plan of the indexed query: `{}`\n\n\
         Notes: the HTTP figures include JSON encoding, bearer-token lookup, the reader pool and \
         HTTP/1.1 on loopback; the raw figures are the bare statements. Numbers move with machine load; \
         compare ratios within one run.\n",
        a.seconds,
        a.concurrency,
        a.items,
        cores,
        row(&meta),
        row(&raw_meta),
        row(&query),
        row(&raw_query),
        meta.per_sec / raw_meta.per_sec.max(1e-9),
        query.per_sec / raw_query.per_sec.max(1e-9),
        eqp.join(" | "),
    );
    print!("{md}");
    if let Some(out) = a.out {
        std::fs::write(&out, &md).expect("write results");
        eprintln!("wrote {out}");
    }
}

//! Rate limits shared across nodes through a real Redis: one quota for the
//! cluster however requests are spread, per-node limits when Redis stops
//! answering (no hang, no free-for-all), shared again once it is back.

use std::time::{Duration, Instant};

use crate::common::process::{Server, facehub, run_err, tenant_with_app};
use crate::common::tenant_token;
use crate::redis::Redis;
use facehub::api::ratelimit::RateLimiter;
use facehub::model::Error;
use serde_json::Value;

/// Fires `n` checks alternating between `nodes`; returns (allowed, elapsed).
async fn burst(nodes: &[&RateLimiter], n: usize, per_minute: bool) -> (usize, Duration) {
    let start = Instant::now();
    let mut allowed = 0;
    for i in 0..n {
        match nodes[i % nodes.len()]
            .check("cli_app", "attendance.upload", per_minute)
            .await
        {
            Ok(()) => allowed += 1,
            Err(Error::RateLimited { reset_secs, .. }) => assert!(reset_secs >= 1),
            Err(e) => panic!("{e:?}"),
        }
    }
    (allowed, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_spend_one_quota_and_fall_back_when_redis_is_gone() {
    let mut redis = Redis::start();
    let a = RateLimiter::shared(50, 1000, &redis.url()).await.unwrap();
    let b = RateLimiter::shared(50, 1000, &redis.url()).await.unwrap();

    // 50/s for the cluster: a burst split across A and B gets 50, plus
    // what the quota refills while it runs (one per 20 ms).
    let (allowed, took) = burst(&[&a, &b], 150, false).await;
    let refill = (took.as_millis() / 20) as usize + 1;
    assert!(
        (50..=50 + refill).contains(&allowed),
        "{allowed} of 150 allowed across two nodes in {took:?}"
    );
    // Per node (no Redis), the same burst would get 50 on each.
    let (la, lb) = (RateLimiter::new(50, 1000), RateLimiter::new(50, 1000));
    let (local, _) = burst(&[&la, &lb], 150, false).await;
    assert!(local >= 100, "{local}");

    // Other apps and endpoints have their own quotas.
    a.check("cli_other", "attendance.upload", false)
        .await
        .unwrap();
    b.check("cli_app", "attendance.download", false)
        .await
        .unwrap();

    // The per-minute quota is shared too.
    let m1 = RateLimiter::shared(1000, 30, &redis.url()).await.unwrap();
    let m2 = RateLimiter::shared(1000, 30, &redis.url()).await.unwrap();
    let start = Instant::now();
    let mut allowed = 0;
    for i in 0..60 {
        let l = if i % 2 == 0 { &m1 } else { &m2 };
        match l.check("cli_m", "lingo.upload", true).await {
            Ok(()) => allowed += 1,
            Err(Error::RateLimited { limit, reset_secs }) => {
                assert_eq!(limit, 30);
                assert!((1..=3).contains(&reset_secs), "{reset_secs}");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let refill = (start.elapsed().as_millis() / 2000) as usize + 1;
    assert!(
        (30..=30 + refill).contains(&allowed),
        "{allowed} of 60 per minute"
    );

    // Redis gone: every check is still answered quickly, each node
    // applying its own limits.
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (allowed_a, took) = burst(&[&a], 80, false).await;
    assert!(took < Duration::from_secs(5), "80 checks took {took:?}");
    let refill = (took.as_millis() / 20) as usize + 1;
    assert!(
        (50..=50 + refill).contains(&allowed_a),
        "{allowed_a} of 80 allowed by one node on its own"
    );

    // Back (empty): shared again, without restarting the nodes.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (allowed, took) = burst(&[&a, &b], 150, false).await;
        let refill = (took.as_millis() / 20) as usize + 1;
        if allowed <= 50 + refill {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not shared again: {allowed} of 150"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_redis_limits_and_refuses_to_start_without_it() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let creds = tenant_with_app(|| facehub(&data), &["attendance:rule:readonly"]);

    // An unreachable Redis stops the start, with a clear reason.
    let dead = format!("redis://127.0.0.1:{}/0", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let err = run_err(facehub(&data).args(["--redis", &dead, "serve", "--listen", "127.0.0.1:0"]));
    assert!(err.contains("redis"), "{err}");

    let server = Server::start_with(&data, |c| {
        c.args(["--redis", &redis.url()])
            .env("FACEHUB_RATE_LIMIT_PER_SECOND", "5");
    });
    let client = reqwest::Client::new();
    let token = tenant_token(&server.base, &creds).await;
    let start = Instant::now();
    let mut codes = Vec::new();
    for _ in 0..20 {
        let r = client
            .get(format!(
                "{}/open-apis/attendance/v1/files/unknown/download",
                server.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        codes.push((status, body["code"].as_i64()));
    }
    let limited = codes
        .iter()
        .filter(|c| **c == (429, Some(99991400)))
        .count();
    let refill = (start.elapsed().as_millis() / 200) as usize + 1;
    assert!(
        (15 - refill.min(15)..=15).contains(&limited),
        "{limited} of 20 limited at 5/s: {codes:?}"
    );
    // The quota lives in Redis.
    let mut conn = ::redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("facehub:rl:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "no quota in redis");
    server.kill();
}

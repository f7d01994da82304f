//! Per app × endpoint frequency limits (the platform limits per API, app
//! and tenant; an app belongs to exactly one tenant).
//!
//! Per node by default (governor, in memory). With `redis` configured the
//! quotas are the cluster's: every node spends from the same counters, so
//! 50/s means 50/s however requests are spread. Should Redis stop
//! answering, each node falls back to its own in-memory limits (logged)
//! rather than refusing everything or letting everything through.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::model::error::Error;

/// GCRA (the algorithm governor implements), kept in Redis: per key, the
/// theoretical arrival time of the next request, in microseconds of the
/// Redis server's clock (one clock for all nodes). A request is allowed
/// when, after adding its emission interval, the key is no further ahead
/// of now than the burst allows. Keys are checked in order and the first
/// refusal stops (quotas before it stay spent, as with the local limiter).
/// Returns {0, -1} when allowed, else {index of the quota, wait in µs}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new_tat = tat + interval
  local ahead = new_tat - now
  if ahead > interval * burst then
    return {i, math.ceil(ahead - interval * burst)}
  end
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000) + 1000)
end
return {0, -1}
"#;

struct Shared {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    /// Until when (unix ms) Redis is not asked: after a failure, requests
    /// go to the local limits at once instead of each waiting for a
    /// timeout; one request a second tries Redis again.
    skip_until: AtomicU64,
    /// When the last "Redis does not answer" was logged (unix seconds).
    last_warned: crate::quiet::Quiet,
}

/// The longest a request waits for Redis before the local limits decide.
const REDIS_WAIT: Duration = Duration::from_millis(250);
/// How long Redis is left alone after a failure.
const REDIS_BACKOFF_MS: u64 = 1000;

type Key = (Arc<str>, &'static str);

/// Every endpoint has a per-second quota; some (lingo) also a per-minute
/// one, checked after it.
pub struct RateLimiter {
    per_second: u32,
    per_minute: u32,
    inner: DefaultKeyedRateLimiter<Key>,
    minutes: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
    shared: Option<Shared>,
}

impl RateLimiter {
    pub fn new(per_second: u32, per_minute: u32) -> Arc<RateLimiter> {
        Self::build(per_second, per_minute, None)
    }

    fn build(per_second: u32, per_minute: u32, shared: Option<Shared>) -> Arc<RateLimiter> {
        let n = NonZeroU32::new(per_second.max(1)).expect("non-zero");
        let m = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
        let limiter = Arc::new(RateLimiter {
            per_second: n.get(),
            per_minute: m.get(),
            inner: governor::RateLimiter::keyed(Quota::per_second(n)),
            minutes: governor::RateLimiter::keyed(Quota::per_minute(m)),
            clock: DefaultClock::default(),
            shared,
        });
        // Forget idle keys now and then so memory follows the active apps.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&limiter);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    match weak.upgrade() {
                        Some(l) => {
                            l.inner.retain_recent();
                            l.minutes.retain_recent();
                        }
                        None => break,
                    }
                }
            });
        }
        limiter
    }

    /// Limits shared through the Redis at `url` (`redis://host:port/db`),
    /// with the in-memory ones as the fallback. Fails when Redis does not
    /// answer now: a node must not start with limits it cannot share.
    pub async fn shared(
        per_second: u32,
        per_minute: u32,
        url: &str,
    ) -> anyhow::Result<Arc<RateLimiter>> {
        let client = redis::Client::open(url).context("redis: not a redis:// URL")?;
        // A request waits at most this long for the limit check.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let mut conn = client
            .get_connection_manager_with_config(config)
            .await
            .context("redis: connecting")?;
        let script = redis::Script::new(GCRA);
        script
            .prepare_invoke()
            .load_async(&mut conn)
            .await
            .context("redis: loading the rate-limit script")?;
        // Built whole, so the pruning task holds this limiter, not a
        // discarded one.
        Ok(Self::build(
            per_second,
            per_minute,
            Some(Shared {
                conn,
                script,
                skip_until: AtomicU64::new(0),
                last_warned: crate::quiet::Quiet::new(),
            }),
        ))
    }

    /// One call of `endpoint` by `app_id`; `per_minute` says whether the
    /// endpoint also has the per-minute quota.
    pub async fn check(
        &self,
        app_id: &str,
        endpoint: &'static str,
        per_minute: bool,
    ) -> Result<(), Error> {
        let now_ms = chrono::Utc::now().timestamp_millis() as u64;
        if let Some(shared) = &self.shared
            && now_ms >= shared.skip_until.load(Ordering::Relaxed)
        {
            let asked = tokio::time::timeout(
                REDIS_WAIT,
                self.check_shared(shared, app_id, endpoint, per_minute),
            )
            .await;
            let e = match asked {
                Ok(Ok(verdict)) => return verdict,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {REDIS_WAIT:?}"),
            };
            shared
                .skip_until
                .store(now_ms + REDIS_BACKOFF_MS, Ordering::Relaxed);
            // Logged once per 10 s, not per request.
            if shared.last_warned.speak((now_ms / 1000) as i64, 10) {
                tracing::warn!(
                    error = %e,
                    "redis does not answer: this node applies its own rate limits"
                );
            }
        }
        self.check_local(app_id, endpoint, per_minute)
    }

    async fn check_shared(
        &self,
        shared: &Shared,
        app_id: &str,
        endpoint: &'static str,
        per_minute: bool,
    ) -> redis::RedisResult<Result<(), Error>> {
        let mut inv = shared.script.prepare_invoke();
        inv.key(format!("facehub:rl:{endpoint}:s:{app_id}"))
            .arg(1_000_000.0 / f64::from(self.per_second))
            .arg(self.per_second);
        if per_minute {
            inv.key(format!("facehub:rl:{endpoint}:m:{app_id}"))
                .arg(60_000_000.0 / f64::from(self.per_minute))
                .arg(self.per_minute);
        }
        let mut conn = shared.conn.clone();
        let (which, wait_us): (i64, i64) = inv.invoke_async(&mut conn).await?;
        Ok(match which {
            0 => Ok(()),
            i => Err(Error::RateLimited {
                limit: if i == 1 {
                    self.per_second
                } else {
                    self.per_minute
                },
                reset_secs: (wait_us.max(0) as u64).div_ceil(1_000_000).max(1),
            }),
        })
    }

    fn check_local(
        &self,
        app_id: &str,
        endpoint: &'static str,
        per_minute: bool,
    ) -> Result<(), Error> {
        let key = (Arc::from(app_id), endpoint);
        let refused = |not_until: governor::NotUntil<_>, limit| {
            let wait = not_until.wait_time_from(self.clock.now());
            Error::RateLimited {
                limit,
                reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        };
        self.inner
            .check_key(&key)
            .map_err(|n| refused(n, self.per_second))?;
        if per_minute {
            self.minutes
                .check_key(&key)
                .map_err(|n| refused(n, self.per_minute))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` requests of app `a` to `endpoint`, all allowed, then one more:
    /// its refusal's (limit, reset_secs).
    async fn exhaust(
        l: &RateLimiter,
        endpoint: &'static str,
        per_minute: bool,
        n: u32,
    ) -> (u32, u64) {
        for _ in 0..n {
            l.check("a", endpoint, per_minute).await.unwrap();
        }
        match l.check("a", endpoint, per_minute).await {
            Err(Error::RateLimited { limit, reset_secs }) => (limit, reset_secs),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn limits_per_app_and_endpoint() {
        let l = RateLimiter::new(5, 1000);
        assert_eq!(exhaust(&l, "x", false, 5).await, (5, 1));
        l.check("a", "y", false).await.unwrap();
        l.check("b", "x", false).await.unwrap();
    }

    #[tokio::test]
    async fn per_minute_quota_applies_where_asked() {
        let l = RateLimiter::new(1000, 3);
        let (limit, reset_secs) = exhaust(&l, "lingo", true, 3).await;
        assert_eq!(limit, 3);
        assert!((1..=20).contains(&reset_secs), "{reset_secs}");
        // Endpoints without the per-minute quota are not affected.
        for _ in 0..10 {
            l.check("a", "attendance", false).await.unwrap();
        }
    }
}

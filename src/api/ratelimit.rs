//! Per app × endpoint frequency limits (the platform limits per API, app
//! and tenant; an app belongs to exactly one tenant).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::Error;

type Key = (Arc<str>, &'static str);

/// Every endpoint has a per-second quota; some (lingo) also a per-minute
/// one, checked after it.
pub struct RateLimiter {
    per_second: u32,
    per_minute: u32,
    inner: DefaultKeyedRateLimiter<Key>,
    minutes: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
}

impl RateLimiter {
    pub fn new(per_second: u32, per_minute: u32) -> Arc<RateLimiter> {
        let n = NonZeroU32::new(per_second.max(1)).expect("non-zero");
        let m = NonZeroU32::new(per_minute.max(1)).expect("non-zero");
        let limiter = Arc::new(RateLimiter {
            per_second: n.get(),
            per_minute: m.get(),
            inner: governor::RateLimiter::keyed(Quota::per_second(n)),
            minutes: governor::RateLimiter::keyed(Quota::per_minute(m)),
            clock: DefaultClock::default(),
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

    /// One call of `endpoint` by `app_id`; `per_minute` says whether the
    /// endpoint also has the per-minute quota.
    pub fn check(
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

    #[tokio::test]
    async fn limits_per_app_and_endpoint() {
        let l = RateLimiter::new(5, 1000);
        for _ in 0..5 {
            l.check("a", "x", false).unwrap();
        }
        match l.check("a", "x", false) {
            Err(Error::RateLimited {
                limit: 5,
                reset_secs: 1,
            }) => {}
            other => panic!("{other:?}"),
        }
        l.check("a", "y", false).unwrap();
        l.check("b", "x", false).unwrap();
    }

    #[tokio::test]
    async fn per_minute_quota_applies_where_asked() {
        let l = RateLimiter::new(1000, 3);
        for _ in 0..3 {
            l.check("a", "lingo", true).unwrap();
        }
        match l.check("a", "lingo", true) {
            Err(Error::RateLimited {
                limit: 3,
                reset_secs,
            }) => assert!((1..=20).contains(&reset_secs), "{reset_secs}"),
            other => panic!("{other:?}"),
        }
        // Endpoints without the per-minute quota are not affected.
        for _ in 0..10 {
            l.check("a", "attendance", false).unwrap();
        }
    }
}

//! Per app × endpoint frequency limits (the platform limits per API, app
//! and tenant; an app belongs to exactly one tenant).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::Error;

type Key = (Arc<str>, &'static str);

pub struct RateLimiter {
    per_second: u32,
    inner: DefaultKeyedRateLimiter<Key>,
    clock: DefaultClock,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Arc<RateLimiter> {
        let n = NonZeroU32::new(per_second.max(1)).expect("non-zero");
        let limiter = Arc::new(RateLimiter {
            per_second: n.get(),
            inner: governor::RateLimiter::keyed(Quota::per_second(n)),
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
                        Some(l) => l.inner.retain_recent(),
                        None => break,
                    }
                }
            });
        }
        limiter
    }

    pub fn check(&self, app_id: &str, endpoint: &'static str) -> Result<(), Error> {
        match self.inner.check_key(&(Arc::from(app_id), endpoint)) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Error::RateLimited {
                    limit: self.per_second,
                    reset_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_per_app_and_endpoint() {
        let l = RateLimiter::new(5);
        for _ in 0..5 {
            l.check("a", "x").unwrap();
        }
        match l.check("a", "x") {
            Err(Error::RateLimited {
                limit: 5,
                reset_secs: 1,
            }) => {}
            other => panic!("{other:?}"),
        }
        l.check("a", "y").unwrap();
        l.check("b", "x").unwrap();
    }
}

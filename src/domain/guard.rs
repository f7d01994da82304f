//! What a caller without a credential may try: failed attempts at a secret
//! (the admin password, a terminal's SecretNo) are counted per client
//! address and per target (the account, the serial number), with an
//! exponential lockout; password checks, which cost ~19 MiB and ~20 ms of
//! argon2 each, run in a small fixed pool.
//!
//! The rule that keeps a stranger from turning the lockout against the
//! real user: a locked *address* is refused everything, but a locked
//! *target* refuses only addresses that have failed themselves. The real
//! administrator (or terminal), coming from an address that has not
//! guessed, is still let in, while each guessing address is held by its
//! own lockout. State is per node and in memory, bounded in entries.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::SecurityConfig;
use crate::model::error::Error;

/// The part of a client address that one client controls: an IPv4
/// address, or an IPv6 /64 (one subscriber's prefix, where a single host
/// can pick from 2^64 addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey([u8; 8], bool);

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => {
                let mut k = [0; 8];
                k[..4].copy_from_slice(&v4.octets());
                ClientKey(k, false)
            }
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::of(IpAddr::V4(v4)),
                None => {
                    let mut k = [0; 8];
                    k.copy_from_slice(&v6.octets()[..8]);
                    ClientKey(k, true)
                }
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 {
            let b = self.0;
            let g = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
            write!(f, "{:x}:{:x}:{:x}:{:x}::/64", g(0), g(2), g(4), g(6))
        } else {
            write!(f, "{}.{}.{}.{}", self.0[0], self.0[1], self.0[2], self.0[3])
        }
    }
}

/// How failures turn into lockouts.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lockout.
    pub free: u32,
    pub first: Duration,
    pub max: Duration,
}

impl Policy {
    pub fn of(c: &SecurityConfig) -> Policy {
        Policy {
            free: c.failures_before_lockout.max(1),
            first: Duration::from_secs(c.lockout_secs.max(1)),
            max: Duration::from_secs(c.lockout_max_secs.max(c.lockout_secs).max(1)),
        }
    }

    /// The lockout after the `n`-th failure in a row, if any.
    fn lockout(&self, n: u32) -> Option<Duration> {
        let over = n.checked_sub(self.free)?;
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        Some(self.first.saturating_mul(factor).min(self.max))
    }
}

#[derive(Debug, Default)]
struct Entry {
    failures: u32,
    locked_until: Option<Instant>,
}

/// Failures per key, forgotten after a success or once a key has been
/// quiet for twice the longest lockout.
pub struct Throttle<K: std::hash::Hash + Eq + Send + Sync + 'static> {
    policy: Policy,
    entries: moka::sync::Cache<K, Arc<Mutex<Entry>>>,
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Throttle<K> {
    pub fn new(policy: Policy) -> Self {
        Throttle {
            policy,
            entries: moka::sync::Cache::builder()
                // ~100 bytes an entry: a flood of fresh keys costs at most
                // a few MiB, and evicts the oldest first.
                .max_capacity(100_000)
                .time_to_idle(policy.max.saturating_mul(2))
                .build(),
        }
    }

    /// How much longer `key` is locked out, if it is.
    pub fn locked(&self, key: &K, now: Instant) -> Option<Duration> {
        let e = self.entries.get(key)?;
        let e = e.lock().expect("throttle entry");
        e.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Whether `key` has failed since its last success.
    pub fn has_failed(&self, key: &K) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| e.lock().expect("throttle entry").failures > 0)
    }

    /// Counts a failure; the lockout it starts, if any.
    pub fn fail(&self, key: &K, now: Instant) -> Option<Duration> {
        let e = self.entries.get_with(key.clone(), Default::default);
        let mut e = e.lock().expect("throttle entry");
        e.failures = e.failures.saturating_add(1);
        let lock = self.policy.lockout(e.failures)?;
        e.locked_until = Some(now + lock);
        Some(lock)
    }

    pub fn forget(&self, key: &K) {
        self.entries.invalidate(key);
    }
}

/// Why an attempt is not even tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This address (or the target, for an address that has failed) is
    /// locked out for this long.
    LockedOut { retry_after: Duration, by: By },
    /// Every password-check slot is busy, or this address already has a
    /// check running.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Address,
    Target,
}

/// Attempts at one kind of secret. Failures are counted per (address,
/// target), per target, and per address as a backstop at four times the
/// free failures (an address guessing across many targets):
/// - a pair locked out refuses that address that target;
/// - a target locked out refuses the addresses that have failed on it;
/// - an address at its backstop is refused everything.
///
/// A success clears its pair and its target, never the address's other
/// failures: a guesser who also holds one valid credential cannot wipe
/// its count against the targets it guesses at.
pub struct Gate {
    by_pair: Throttle<(ClientKey, String)>,
    by_target: Throttle<String>,
    by_address: Throttle<ClientKey>,
}

/// How many times the free failures an address may spend across targets.
const BACKSTOP: u32 = 4;

impl Gate {
    pub fn new(policy: Policy) -> Gate {
        let backstop = Policy {
            free: policy.free.saturating_mul(BACKSTOP),
            ..policy
        };
        Gate {
            by_pair: Throttle::new(policy),
            by_target: Throttle::new(policy),
            by_address: Throttle::new(backstop),
        }
    }

    /// Whether `client` may try `target` now.
    pub fn admit(&self, client: ClientKey, target: &str) -> Result<(), Refusal> {
        let now = Instant::now();
        let pair = (client, target.to_string());
        let locked = |retry_after| {
            Err(Refusal::LockedOut {
                retry_after,
                by: By::Address,
            })
        };
        if let Some(retry_after) = self.by_pair.locked(&pair, now) {
            return locked(retry_after);
        }
        if let Some(retry_after) = self.by_address.locked(&client, now) {
            return locked(retry_after);
        }
        if let Some(retry_after) = self.by_target.locked(&pair.1, now)
            && self.by_pair.has_failed(&pair)
        {
            return Err(Refusal::LockedOut {
                retry_after,
                by: By::Target,
            });
        }
        Ok(())
    }

    /// Records the attempt's outcome; after a failure, whether it started
    /// a lockout.
    pub fn record(&self, client: ClientKey, target: &str, ok: bool) -> bool {
        let pair = (client, target.to_string());
        if ok {
            self.by_pair.forget(&pair);
            self.by_target.forget(&pair.1);
            return false;
        }
        let now = Instant::now();
        let p = self.by_pair.fail(&pair, now);
        let t = self.by_target.fail(&pair.1, now);
        let a = self.by_address.fail(&client, now);
        p.is_some() || t.is_some() || a.is_some()
    }

    /// Forgets the target's failures (a terminal an admin just added).
    pub fn forget_target(&self, target: &str) {
        self.by_target.forget(&target.to_string());
    }
}

/// Password checks: at most `slots` at once, one per address, each on
/// one of `slots` threads of the pool's own; a caller waits at most
/// [`PASSWORD_WAIT`] for a slot.
///
/// Own threads, not the runtime's blocking pool: the allocator keeps a
/// freed argon2 block (19 MiB) in the arena of the thread that freed it,
/// and the blocking pool's threads come and go (a login flood left one in
/// each of a dozen arenas, over 300 MiB). Each of these threads reuses one
/// block buffer (see `domain::admin`).
pub struct PasswordPool {
    slots: Arc<tokio::sync::Semaphore>,
    running: Arc<Mutex<HashSet<ClientKey>>>,
    jobs: Mutex<std::sync::mpsc::SyncSender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// How long a password check may wait for a slot before it is refused.
pub const PASSWORD_WAIT: Duration = Duration::from_secs(1);

/// An address's place among the checks running; dropping it frees it.
struct Running {
    set: Arc<Mutex<HashSet<ClientKey>>>,
    client: ClientKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.set.lock().expect("password pool").remove(&self.client);
    }
}

/// A password check's place in the pool; it is released when the check it
/// is given to ([`PasswordPool::run`]) has finished, whether or not its
/// caller is still waiting.
pub struct PasswordSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _running: Running,
}

impl PasswordPool {
    pub fn new(slots: usize) -> PasswordPool {
        let slots = slots.max(1);
        // Bounded: a job is queued only by the holder of a slot.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(slots);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("facehub-password-{i}"))
                .spawn(move || {
                    loop {
                        // Ends with the pool: its sender is dropped.
                        let job = queue.lock().expect("password queue").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => break,
                        }
                    }
                })
                .expect("starting a password-check thread");
        }
        PasswordPool {
            slots: Arc::new(tokio::sync::Semaphore::new(slots)),
            running: Arc::default(),
            jobs: Mutex::new(jobs),
        }
    }

    pub async fn slot(&self, client: ClientKey) -> Result<PasswordSlot, Refusal> {
        // One check per address at a time: a burst from one address is
        // judged one by one, so its lockout starts after its fifth guess,
        // not after the burst.
        if !self.running.lock().expect("password pool").insert(client) {
            return Err(Refusal::Busy);
        }
        let running = Running {
            set: self.running.clone(),
            client,
        };
        match tokio::time::timeout(PASSWORD_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(PasswordSlot {
                _permit: permit,
                _running: running,
            }),
            _ => Err(Refusal::Busy),
        }
    }

    /// Runs `check` on one of the pool's threads and hands `slot` back
    /// with its result, so the caller records the outcome before the
    /// address may try again. A caller gone meanwhile drops the reply, and
    /// the slot with it, once the check has finished.
    pub async fn run<T: Send + 'static>(
        &self,
        slot: PasswordSlot,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<(T, PasswordSlot), Error> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send((check(), slot));
        });
        self.jobs
            .lock()
            .expect("password pool")
            .try_send(job)
            .map_err(|_| Error::internal("the password-check threads are gone"))?;
        result
            .await
            .map_err(|_| Error::internal("a password check panicked"))
    }
}

/// What was attempted, for the refusal's words, the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    AdminLogin,
    DeviceRegister,
}

impl Attempt {
    pub fn as_str(self) -> &'static str {
        match self {
            Attempt::AdminLogin => "admin_login",
            Attempt::DeviceRegister => "device_register",
        }
    }

    fn gate(self, guard: &Guard) -> &Gate {
        match self {
            Attempt::AdminLogin => &guard.admin_login,
            Attempt::DeviceRegister => &guard.device_register,
        }
    }
}

impl super::Core {
    /// The client's error for an attempt the guard did not let through,
    /// counted and logged.
    pub(crate) fn refused(&self, what: Attempt, client: ClientKey, r: Refusal) -> Error {
        let noun = match what {
            Attempt::AdminLogin => "logins",
            Attempt::DeviceRegister => "registrations",
        };
        let (msg, retry_after_secs, reason) = match r {
            Refusal::Busy => (
                "too many password checks at once; retry in a second".to_string(),
                1,
                "busy",
            ),
            Refusal::LockedOut { retry_after, by } => {
                let secs = retry_after.as_secs_f64().ceil() as u64;
                let whose = match by {
                    By::Address => "from this address",
                    By::Target => "for this account from this address",
                };
                (
                    format!("too many failed {noun} {whose}; retry in {secs} s"),
                    secs,
                    "locked_out",
                )
            }
        };
        tracing::debug!(attempt = what.as_str(), %client, reason, "attempt refused");
        self.metrics.attempt_refused(what.as_str(), reason);
        Error::Throttled {
            msg,
            retry_after_secs,
        }
    }

    /// Records an attempt's outcome: failures are counted, and a lockout
    /// they start is logged (with the address, never the secret tried).
    pub(crate) fn attempted(&self, what: Attempt, client: ClientKey, target: &str, ok: bool) {
        let locked = what.gate(&self.guard).record(client, target, ok);
        if !ok {
            self.metrics.attempt_failed(what.as_str());
            if locked {
                tracing::warn!(
                    attempt = what.as_str(),
                    %client,
                    target,
                    "failed attempts: locked out"
                );
                self.metrics.lockout(what.as_str());
            }
        }
    }
}

/// The gates of one node.
pub struct Guard {
    pub admin_login: Gate,
    pub device_register: Gate,
    pub passwords: PasswordPool,
}

impl Guard {
    pub fn new(c: &SecurityConfig) -> Guard {
        let policy = Policy::of(c);
        Guard {
            admin_login: Gate::new(policy),
            device_register: Gate::new(policy),
            passwords: PasswordPool::new(c.password_checks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            free: 3,
            first: Duration::from_secs(10),
            max: Duration::from_secs(60),
        }
    }

    fn ip(s: &str) -> ClientKey {
        ClientKey::of(s.parse().unwrap())
    }

    #[test]
    fn lockouts_double_up_to_the_maximum() {
        let p = policy();
        let secs = |n| p.lockout(n).map(|d| d.as_secs());
        assert_eq!((secs(1), secs(2)), (None, None));
        assert_eq!(
            (secs(3), secs(4), secs(5), secs(6)),
            (Some(10), Some(20), Some(40), Some(60))
        );
        assert_eq!(secs(u32::MAX), Some(60));
    }

    #[test]
    fn a_throttle_locks_after_the_free_failures_and_forgets_on_success() {
        let t = Throttle::new(policy());
        let now = Instant::now();
        let k = "a".to_string();
        assert_eq!(t.fail(&k, now), None);
        assert_eq!(t.fail(&k, now), None);
        assert!(t.locked(&k, now).is_none());
        assert_eq!(t.fail(&k, now), Some(Duration::from_secs(10)));
        assert_eq!(
            t.locked(&k, now + Duration::from_secs(4)),
            Some(Duration::from_secs(6))
        );
        assert!(t.locked(&k, now + Duration::from_secs(10)).is_none());
        assert!(t.has_failed(&k));
        t.forget(&k);
        assert!(!t.has_failed(&k) && t.locked(&k, now).is_none());
    }

    #[test]
    fn a_locked_target_refuses_only_addresses_that_failed() {
        let g = Gate::new(policy());
        // Three guessing addresses lock the account out between them.
        for a in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
            assert_eq!(g.admit(ip(a), "admin"), Ok(()));
            g.record(ip(a), "admin", false);
        }
        let Err(Refusal::LockedOut { by, .. }) = g.admit(ip("10.0.0.1"), "admin") else {
            panic!("a guessing address is let in while the account is locked");
        };
        assert_eq!(by, By::Target);
        // The real user, from an address that never failed, is not.
        assert_eq!(g.admit(ip("10.0.0.9"), "admin"), Ok(()));
        // Its success clears the account, not the guessers' addresses.
        g.record(ip("10.0.0.9"), "admin", true);
        assert_eq!(g.admit(ip("10.0.0.1"), "admin"), Ok(()));
        // One address against one target: locked out of it after the free
        // failures; other targets only at the address's backstop (4×).
        for _ in 0..3 {
            g.record(ip("10.0.0.5"), "x", false);
        }
        assert!(matches!(
            g.admit(ip("10.0.0.5"), "x"),
            Err(Refusal::LockedOut {
                by: By::Address,
                ..
            })
        ));
        assert_eq!(g.admit(ip("10.0.0.5"), "other"), Ok(()));
        for t in ["a", "b", "c", "d", "e", "f", "g", "h", "i"] {
            g.record(ip("10.0.0.5"), t, false);
        }
        assert!(matches!(
            g.admit(ip("10.0.0.5"), "other"),
            Err(Refusal::LockedOut {
                by: By::Address,
                ..
            })
        ));
    }

    #[test]
    fn a_success_elsewhere_does_not_wipe_a_guesser_s_count() {
        let g = Gate::new(policy());
        // Two guesses at the victim, then a valid login to its own target,
        // over and over: the victim pair still locks after three guesses.
        let guesser = ip("10.0.0.66");
        let mut guesses = 0;
        for _ in 0..5 {
            for _ in 0..2 {
                if g.admit(guesser, "victim").is_ok() {
                    guesses += 1;
                    g.record(guesser, "victim", false);
                }
            }
            assert_eq!(g.admit(guesser, "own"), Ok(()));
            g.record(guesser, "own", true);
        }
        assert_eq!(guesses, 3);
    }

    #[test]
    fn ipv6_clients_are_their_slash_64() {
        assert_eq!(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.1.2.3"), ip("10.1.2.3"));
        assert_eq!(ip("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
        assert_eq!(ip("10.1.2.3").to_string(), "10.1.2.3");
    }

    #[tokio::test]
    async fn a_slot_is_held_until_its_check_ends_even_if_nobody_waits() {
        let pool = PasswordPool::new(1);
        let slot = pool.slot(ip("10.0.0.1")).await.unwrap();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let check = pool.run(slot, move || wait.recv().is_ok());
        // The caller gives up (a client that hung up).
        let _ = tokio::time::timeout(Duration::from_millis(50), check).await;
        assert_eq!(pool.slot(ip("10.0.0.1")).await.err(), Some(Refusal::Busy));
        go.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(pool.slot(ip("10.0.0.1")).await.is_ok());
    }

    #[tokio::test]
    async fn password_checks_are_bounded_and_one_per_address() {
        let pool = PasswordPool::new(1);
        let a = pool.slot(ip("10.0.0.1")).await.unwrap();
        // The same address again: refused at once.
        assert_eq!(pool.slot(ip("10.0.0.1")).await.err(), Some(Refusal::Busy));
        // Another address waits for the one slot, then gives up.
        let started = Instant::now();
        assert_eq!(pool.slot(ip("10.0.0.2")).await.err(), Some(Refusal::Busy));
        assert!(started.elapsed() >= PASSWORD_WAIT);
        drop(a);
        let _b = pool.slot(ip("10.0.0.2")).await.unwrap();
        assert_eq!(pool.slot(ip("10.0.0.1")).await.err(), Some(Refusal::Busy));
    }
}

//! Prometheus metrics: one registry per server, rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route pattern (`/open-apis/acs/v1/users/{user_id}`), never the
    /// raw path, so ids do not become series.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeviceLabels {
    /// A known command name, or `other`.
    pub cmd: String,
    pub errcode: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    /// The image rule that refused the upload (`too_large`, `corrupt`, …).
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The endpoint's rate-limit bucket, or `uploads` for the concurrency cap.
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `admin_login` or `device_register`.
    pub attempt: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub attempt: &'static str,
    /// `locked_out`, `busy`, or for device connections `origin`,
    /// `prelogin_cap`, `prelogin_deadline`, `prelogin_bytes`.
    pub reason: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<RouteLabels, Histogram>,
    pub bytes_in: Family<RouteLabels, Counter>,
    pub bytes_out: Family<RouteLabels, Counter>,
    pub uploads_refused: Family<RuleLabels, Counter>,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub face_detect_seconds: Histogram,
    pub device_commands: Family<DeviceLabels, Counter>,
    pub devices_connected: Gauge,
    pub sync_backlog: Gauge,
    pub attempts_failed: Family<AttemptLabels, Counter>,
    pub attempts_refused: Family<RefusalLabels, Counter>,
    pub lockouts: Family<AttemptLabels, Counter>,
    pub storage_free_bytes: Gauge,
}

/// Commands counted under their own name; anything else is `other`.
const KNOWN_COMMANDS: &[&str] = &[
    "ping",
    "register",
    "active",
    "subscribe_corp",
    "get_perm_version",
    "upload_userinfo",
    "get_userinfo_by_ids",
    "get_userinfo_by_page",
    "check_userid",
    "checkin",
    "download_photo",
];

/// Registers each metric it is handed and hands it back, so that a metric
/// and its registration are one statement.
struct Registrar<'r>(&'r mut Registry);

impl Registrar<'_> {
    fn metric<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        self.0.register(name, help, metric.clone());
        metric
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("facehub");
        let mut add = Registrar(&mut registry);
        let http_requests = add.metric(
            "http_requests",
            "HTTP requests by route and status",
            Family::default(),
        );
        let http_seconds = add.metric(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            Family::<RouteLabels, Histogram>::new_with_constructor(
                (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
            ),
        );
        let bytes_in = add.metric(
            "http_request_body_bytes",
            "Request body bytes received, by route",
            Family::default(),
        );
        let bytes_out = add.metric(
            "http_response_body_bytes",
            "Response body bytes sent, by route",
            Family::default(),
        );
        let uploads_refused = add.metric(
            "uploads_refused",
            "Uploads refused by image validation, by the rule that refused them",
            Family::default(),
        );
        let rate_limited = add.metric(
            "rate_limited",
            "Requests refused by a frequency limit or the upload concurrency cap",
            Family::default(),
        );
        let face_detect_seconds = add.metric(
            "face_detect_duration_seconds",
            "Face detection and cropping time per door-access enrolment",
            Histogram::new(exponential_buckets(0.002, 2.0, 14)),
        );
        let sync_backlog = add.metric(
            "device_sync_backlog",
            "Address-book versions bound terminals have not been sent yet, summed",
            Gauge::default(),
        );
        let device_commands = add.metric(
            "device_commands",
            "Device protocol requests by command and errcode",
            Family::default(),
        );
        let devices_connected = add.metric(
            "devices_connected",
            "Terminals logged in on this node",
            Gauge::default(),
        );
        let attempts_failed = add.metric(
            "auth_failures",
            "Failed attempts at a secret (admin password, terminal SecretNo)",
            Family::default(),
        );
        let attempts_refused = add.metric(
            "auth_refused",
            "Attempts refused before any secret was checked, by reason",
            Family::default(),
        );
        let lockouts = add.metric(
            "auth_lockouts",
            "Lockouts started by failed attempts",
            Family::default(),
        );
        let storage_free_bytes = add.metric(
            "storage_free_bytes",
            "Free bytes on the data directory's filesystem, as last checked by an upload",
            Gauge::default(),
        );
        Metrics {
            registry,
            storage_free_bytes,
            attempts_failed,
            attempts_refused,
            lockouts,
            http_requests,
            http_seconds,
            bytes_in,
            bytes_out,
            uploads_refused,
            rate_limited,
            face_detect_seconds,
            device_commands,
            devices_connected,
            sync_backlog,
        }
    }
}

impl Metrics {
    pub fn upload_refused(&self, rule: &str) {
        self.uploads_refused
            .get_or_create(&RuleLabels {
                rule: rule.to_string(),
            })
            .inc();
    }

    pub fn rate_limit_hit(&self, endpoint: &str) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                endpoint: endpoint.to_string(),
            })
            .inc();
    }

    pub fn device_command(&self, cmd: &str, errcode: i64) {
        let cmd = if KNOWN_COMMANDS.contains(&cmd) {
            cmd
        } else {
            "other"
        };
        self.device_commands
            .get_or_create(&DeviceLabels {
                cmd: cmd.to_string(),
                errcode,
            })
            .inc();
    }

    pub fn attempt_failed(&self, attempt: &'static str) {
        self.attempts_failed
            .get_or_create(&AttemptLabels { attempt })
            .inc();
    }

    pub fn attempt_refused(&self, attempt: &'static str, reason: &'static str) {
        self.attempts_refused
            .get_or_create(&RefusalLabels { attempt, reason })
            .inc();
    }

    pub fn lockout(&self, attempt: &'static str) {
        self.lockouts
            .get_or_create(&AttemptLabels { attempt })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

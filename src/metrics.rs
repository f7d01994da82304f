//! Prometheus metrics: one registry per server, rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("facehub");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))) as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_seconds.clone(),
        );
        let bytes_in = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_request_body_bytes",
            "Request body bytes received, by route",
            bytes_in.clone(),
        );
        let bytes_out = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_response_body_bytes",
            "Response body bytes sent, by route",
            bytes_out.clone(),
        );
        let uploads_refused = Family::<RuleLabels, Counter>::default();
        registry.register(
            "uploads_refused",
            "Uploads refused by image validation, by the rule that refused them",
            uploads_refused.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a frequency limit or the upload concurrency cap",
            rate_limited.clone(),
        );
        let face_detect_seconds = Histogram::new(exponential_buckets(0.002, 2.0, 14));
        registry.register(
            "face_detect_duration_seconds",
            "Face detection and cropping time per door-access enrolment",
            face_detect_seconds.clone(),
        );
        let sync_backlog = Gauge::default();
        registry.register(
            "device_sync_backlog",
            "Address-book versions bound terminals have not been sent yet, summed",
            sync_backlog.clone(),
        );
        let device_commands = Family::<DeviceLabels, Counter>::default();
        registry.register(
            "device_commands",
            "Device protocol requests by command and errcode",
            device_commands.clone(),
        );
        let devices_connected = Gauge::default();
        registry.register(
            "devices_connected",
            "Terminals logged in on this node",
            devices_connected.clone(),
        );
        let attempts_failed = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Failed attempts at a secret (admin password, terminal SecretNo)",
            attempts_failed.clone(),
        );
        let attempts_refused = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "auth_refused",
            "Attempts refused before any secret was checked, by reason",
            attempts_refused.clone(),
        );
        let lockouts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "auth_lockouts",
            "Lockouts started by failed attempts",
            lockouts.clone(),
        );
        let storage_free_bytes = Gauge::default();
        registry.register(
            "storage_free_bytes",
            "Free bytes on the data directory's filesystem, as last checked by an upload",
            storage_free_bytes.clone(),
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

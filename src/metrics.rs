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

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_seconds: Family<RouteLabels, Histogram>,
    pub device_commands: Family<DeviceLabels, Counter>,
    pub devices_connected: Gauge,
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
        Metrics {
            registry,
            http_requests,
            http_seconds,
            device_commands,
            devices_connected,
        }
    }
}

impl Metrics {
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

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

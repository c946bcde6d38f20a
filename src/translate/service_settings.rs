//! Backend settings a Service carries in its annotations and ports: health check, timeouts,
//! the protocol the load balancer speaks to each port, and whether its ports are served through
//! node ports or straight at the pods (`cloud.google.com/neg`).
//!
//! Defaults, when the Service says nothing: [`HealthCheck::default()`] (probe `/` on the serving
//! node port), a 30 s backend timeout (GCE's own default, so an unannotated Service behaves as
//! on any GCE load balancer) and no connection draining (0 s: a node leaving the pool does not
//! hold up the update; Services that need draining say so).

use super::syntax::{nearest, parse_uint};
use crate::annotations as keys;
use cloud::model::{BackendProtocol, HealthCheck};
use k8s_openapi::api::core::v1::{Service, ServicePort};
use std::collections::BTreeMap;

/// Backend timeout when the Service does not set [`keys::BACKEND_TIMEOUT`].
pub const DEFAULT_BACKEND_TIMEOUT_SEC: u32 = 30;
/// Connection-draining timeout when the Service does not set [`keys::CONNECTION_DRAINING_TIMEOUT`].
pub const DEFAULT_CONNECTION_DRAINING_TIMEOUT_SEC: u32 = 0;

/// What a Service's annotations ask of every backend built from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceSettings {
    /// The defaults with the health-check annotations applied.
    pub(crate) health_check: HealthCheck,
    /// Which of `health_check`'s fields an annotation set: those beat the readiness probe.
    pub(crate) explicit: ExplicitHealthCheck,
    pub(crate) timeout_sec: u32,
    pub(crate) draining_sec: u32,
    /// `cloud.google.com/neg`'s `ingress`: `None` when the annotation is absent, says nothing of
    /// Ingress, or could not be read (a warning, then the controller's default applies).
    pub(crate) neg: Option<bool>,
    /// `cloud.google.com/app-protocols`: port name or number to protocol.
    app_protocols: BTreeMap<String, BackendProtocol>,
}

/// The health-check fields a Service annotation set explicitly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExplicitHealthCheck {
    pub(crate) path: bool,
    pub(crate) port: bool,
    pub(crate) host: bool,
    pub(crate) interval: bool,
    pub(crate) timeout: bool,
}

/// The settings, or what is wrong with the annotations. Messages start with `Service ns/name:`
/// and name the annotation; the caller attaches them to the Ingress field that refers to the
/// Service.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) settings: ServiceSettings,
    pub(crate) errors: Vec<String>,
    pub(crate) warnings: Vec<String>,
}

/// Reads the Service's annotations (`id` is `namespace/name`, for messages; `neg_default` is
/// [`super::Config::neg_default`], named in the warning when `cloud.google.com/neg` is unreadable).
pub(crate) fn parse(service: &Service, id: &str, neg_default: bool) -> Parsed {
    let mut parser = Parser {
        id,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let empty = BTreeMap::new();
    let annotations = service.metadata.annotations.as_ref().unwrap_or(&empty);
    let get = |key: &str| annotations.get(key).map(String::as_str);

    let defaults = HealthCheck::default();
    let health_check = HealthCheck {
        path: parser
            .path(keys::HEALTH_CHECK_PATH, get(keys::HEALTH_CHECK_PATH))
            .unwrap_or(defaults.path),
        port: parser
            .number(
                keys::HEALTH_CHECK_PORT,
                get(keys::HEALTH_CHECK_PORT),
                1,
                65535,
                "a port number",
            )
            .and_then(|p| u16::try_from(p).ok()),
        host: parser.host(keys::HEALTH_CHECK_HOST, get(keys::HEALTH_CHECK_HOST)),
        check_interval_sec: parser
            .seconds(
                keys::HEALTH_CHECK_INTERVAL,
                get(keys::HEALTH_CHECK_INTERVAL),
                1,
                300,
            )
            .unwrap_or(defaults.check_interval_sec),
        timeout_sec: parser
            .seconds(
                keys::HEALTH_CHECK_TIMEOUT,
                get(keys::HEALTH_CHECK_TIMEOUT),
                1,
                300,
            )
            .unwrap_or(defaults.timeout_sec),
        healthy_threshold: parser
            .count(keys::HEALTHY_THRESHOLD, get(keys::HEALTHY_THRESHOLD))
            .unwrap_or(defaults.healthy_threshold),
        unhealthy_threshold: parser
            .count(keys::UNHEALTHY_THRESHOLD, get(keys::UNHEALTHY_THRESHOLD))
            .unwrap_or(defaults.unhealthy_threshold),
    };
    if health_check.timeout_sec > health_check.check_interval_sec {
        // Blame whichever of the two the user wrote; the timeout if both.
        let key = if get(keys::HEALTH_CHECK_TIMEOUT).is_some() {
            keys::HEALTH_CHECK_TIMEOUT
        } else {
            keys::HEALTH_CHECK_INTERVAL
        };
        parser.error(
            key,
            format!(
                "the health-check timeout ({} s) must not exceed its interval ({} s)",
                health_check.timeout_sec, health_check.check_interval_sec
            ),
        );
    }
    let timeout_sec = parser
        .seconds(
            keys::BACKEND_TIMEOUT,
            get(keys::BACKEND_TIMEOUT),
            1,
            i32::MAX as u32,
        )
        .unwrap_or(DEFAULT_BACKEND_TIMEOUT_SEC);
    let draining_sec = parser
        .seconds(
            keys::CONNECTION_DRAINING_TIMEOUT,
            get(keys::CONNECTION_DRAINING_TIMEOUT),
            0,
            3600,
        )
        .unwrap_or(DEFAULT_CONNECTION_DRAINING_TIMEOUT_SEC);
    let app_protocols = parser.app_protocols(service, annotations);
    let neg = parser.neg(get(keys::NEG), neg_default);
    let explicit = ExplicitHealthCheck {
        path: get(keys::HEALTH_CHECK_PATH).is_some(),
        port: get(keys::HEALTH_CHECK_PORT).is_some(),
        host: get(keys::HEALTH_CHECK_HOST).is_some(),
        interval: get(keys::HEALTH_CHECK_INTERVAL).is_some(),
        timeout: get(keys::HEALTH_CHECK_TIMEOUT).is_some(),
    };

    for key in annotations.keys() {
        parser.check_key(key);
    }

    let Parser { errors, warnings, .. } = parser;
    Parsed {
        settings: ServiceSettings {
            health_check,
            explicit,
            timeout_sec,
            draining_sec,
            neg,
            app_protocols,
        },
        errors,
        warnings,
    }
}

/// The protocol for one port of the Service: the app-protocols annotation if it names the port
/// (by name, else by number), else the port's `appProtocol`, else HTTP.
///
/// `appProtocol` values: `http` → HTTP, `https` → HTTPS (any case), `HTTP2`/`h2` → HTTP/2 over
/// TLS (GCE's HTTP2 backend protocol), `kubernetes.io/ws` → HTTP and `kubernetes.io/wss` →
/// HTTPS (WebSockets ride on those). `kubernetes.io/h2c` (HTTP/2 without TLS) and anything else
/// is an error: guessing would send the wrong protocol to the backend.
pub(crate) fn port_protocol(
    settings: &ServiceSettings,
    port: &ServicePort,
    index: usize,
    id: &str,
) -> Result<BackendProtocol, String> {
    let by_name = port.name.as_ref().and_then(|n| settings.app_protocols.get(n));
    if let Some(protocol) = by_name.or_else(|| settings.app_protocols.get(&port.port.to_string())) {
        return Ok(*protocol);
    }
    let Some(app_protocol) = port.app_protocol.as_deref() else {
        return Ok(BackendProtocol::Http);
    };
    match app_protocol.to_ascii_lowercase().as_str() {
        "http" | "kubernetes.io/ws" => Ok(BackendProtocol::Http),
        "https" | "kubernetes.io/wss" => Ok(BackendProtocol::Https),
        "http2" | "h2" => Ok(BackendProtocol::Http2),
        "kubernetes.io/h2c" => Err(format!(
            "Service {id}: spec.ports[{index}].appProtocol: \"kubernetes.io/h2c\" (HTTP/2 without TLS) is not \
             supported; serve TLS and use HTTP2, or use http"
        )),
        _ => Err(format!(
            "Service {id}: spec.ports[{index}].appProtocol: {app_protocol:?} is not supported; use http, https \
             or HTTP2, or set {:?}",
            keys::APP_PROTOCOLS
        )),
    }
}

struct Parser<'a> {
    id: &'a str,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Parser<'_> {
    fn error(&mut self, key: &str, message: impl std::fmt::Display) {
        self.errors.push(format!(
            "Service {}: metadata.annotations[{key:?}]: {message}",
            self.id
        ));
    }

    fn warn(&mut self, key: &str, message: impl std::fmt::Display) {
        self.warnings.push(format!(
            "Service {}: metadata.annotations[{key:?}]: {message}",
            self.id
        ));
    }

    fn number(&mut self, key: &str, value: Option<&str>, min: u64, max: u64, what: &str) -> Option<u64> {
        let value = value?;
        match parse_uint(value) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(_) => {
                self.error(key, format!("{value:?} is out of range: use {min} to {max}"));
                None
            }
            None => {
                self.error(key, format!("{value:?} is not {what}"));
                None
            }
        }
    }

    fn seconds(&mut self, key: &str, value: Option<&str>, min: u32, max: u32) -> Option<u32> {
        self.number(key, value, min.into(), max.into(), "a whole number of seconds")
            .and_then(|n| u32::try_from(n).ok())
    }

    fn count(&mut self, key: &str, value: Option<&str>) -> Option<u32> {
        self.number(key, value, 1, 10, "a whole number")
            .and_then(|n| u32::try_from(n).ok())
    }

    fn path(&mut self, key: &str, value: Option<&str>) -> Option<String> {
        let value = value?;
        if !value.starts_with('/') {
            self.error(key, format!("{value:?} must start with '/'"));
            return None;
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                key,
                format!("{value:?} must not contain spaces or control characters"),
            );
            return None;
        }
        Some(value.to_owned())
    }

    fn host(&mut self, key: &str, value: Option<&str>) -> Option<String> {
        let value = value?;
        if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(key, format!("{value:?} is not a valid Host header value"));
            return None;
        }
        Some(value.to_owned())
    }

    fn app_protocols(
        &mut self,
        service: &Service,
        annotations: &BTreeMap<String, String>,
    ) -> BTreeMap<String, BackendProtocol> {
        let (key, value) = match (
            annotations.get(keys::APP_PROTOCOLS),
            annotations.get(keys::APP_PROTOCOLS_LEGACY),
        ) {
            (Some(value), _) => (keys::APP_PROTOCOLS, value),
            (None, Some(value)) => (keys::APP_PROTOCOLS_LEGACY, value),
            (None, None) => return BTreeMap::new(),
        };
        let map: BTreeMap<String, String> = match serde_json::from_str(value) {
            Ok(map) => map,
            Err(e) => {
                self.error(
                    key,
                    format!(
                        "not a JSON object of port name or number to \"HTTP\", \"HTTPS\" or \"HTTP2\" ({e}), \
                         e.g. {{\"http\":\"HTTPS\"}}"
                    ),
                );
                return BTreeMap::new();
            }
        };
        let ports = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or(&[]);
        let mut protocols = BTreeMap::new();
        for (port, protocol) in map {
            let parsed = match protocol.to_ascii_uppercase().as_str() {
                "HTTP" => BackendProtocol::Http,
                "HTTPS" => BackendProtocol::Https,
                "HTTP2" => BackendProtocol::Http2,
                _ => {
                    self.error(
                        key,
                        format!("port {port:?}: {protocol:?} is not one of HTTP, HTTPS, HTTP2"),
                    );
                    continue;
                }
            };
            let known = ports
                .iter()
                .any(|p| p.name.as_deref() == Some(port.as_str()) || p.port.to_string() == port);
            if !known {
                self.warn(
                    key,
                    format!("{port:?} names no port of the Service; it is ignored"),
                );
            }
            protocols.insert(port, parsed);
        }
        protocols
    }

    /// `cloud.google.com/neg`, read as ingress-gce reads it (`pkg/annotations/service.go`,
    /// `NEGAnnotation`: Go's `json.Unmarshal` into `{ingress bool, exposed_ports
    /// map[int32]{name string}}`): text that is not JSON, or a known key of the wrong type,
    /// makes the whole annotation invalid; unknown keys are ignored there. Here an invalid
    /// annotation is a warning and the controller's default applies (the Ingress still gets its
    /// load balancer); an unknown key is a warning too (a typo such as `ingres` would otherwise
    /// pass unseen) while the rest is honoured, as ingress-gce honours it. `zones` is accepted
    /// whatever its value. A valid annotation without `ingress` says nothing of Ingress: the
    /// default applies (ingress-gce would read it as `false`; GKE adds `"ingress": true` itself
    /// on the clusters where its default is endpoints).
    fn neg(&mut self, value: Option<&str>, neg_default: bool) -> Option<bool> {
        const KEYS: [&str; 3] = ["ingress", "exposed_ports", "zones"];
        let value = value?;
        let ignored = if neg_default {
            "the annotation is ignored and the Service's ports are served at their pods (the controller's \
             --neg-default)"
        } else {
            "the annotation is ignored and the Service's ports are served through node ports (the \
             controller's default)"
        };
        let map = match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => {
                self.warn(
                    keys::NEG,
                    format!("{value:?} is not a JSON object such as {{\"ingress\": true}}; {ignored}"),
                );
                return None;
            }
            Err(e) => {
                self.warn(
                    keys::NEG,
                    format!("not JSON ({e}); write e.g. {{\"ingress\": true}}; {ignored}"),
                );
                return None;
            }
        };
        let mut ingress = None;
        let mut valid = true;
        for (key, v) in &map {
            match key.as_str() {
                "ingress" => match v {
                    serde_json::Value::Bool(b) => ingress = Some(*b),
                    serde_json::Value::Null => {}
                    other => {
                        self.warn(
                            keys::NEG,
                            format!("\"ingress\" must be true or false, not {other}; {ignored}"),
                        );
                        valid = false;
                    }
                },
                "exposed_ports" => {
                    if !exposed_ports_valid(v) {
                        self.warn(
                            keys::NEG,
                            format!(
                                "\"exposed_ports\" must map port numbers to objects, e.g. {{\"80\": {{}}}}, \
                                 not {v}; {ignored}"
                            ),
                        );
                        valid = false;
                    }
                }
                "zones" => {}
                unknown => {
                    let message = match nearest(unknown, &KEYS) {
                        Some(near) => {
                            format!("unknown key {unknown:?} (did you mean {near:?}?); it is ignored")
                        }
                        None => format!(
                            "unknown key {unknown:?}; it is ignored (known: \"ingress\", \"exposed_ports\", \
                             \"zones\")"
                        ),
                    };
                    self.warn(keys::NEG, message);
                }
            }
        }
        if valid { ingress } else { None }
    }

    /// Reports keys under our prefix that mean nothing on a Service.
    fn check_key(&mut self, key: &str) {
        let Some(suffix) = key.strip_prefix(keys::PREFIX) else {
            return;
        };
        if keys::KNOWN_SERVICE_KEYS.contains(&key) {
            return;
        }
        if keys::KNOWN_INGRESS_KEYS.contains(&key) {
            self.warn(
                key,
                "this is an Ingress annotation; it has no effect on a Service",
            );
            return;
        }
        let suffixes: Vec<&str> = keys::KNOWN_SERVICE_KEYS
            .iter()
            .filter_map(|k| k.strip_prefix(keys::PREFIX))
            .collect();
        match nearest(suffix, &suffixes) {
            Some(near) => self.warn(
                key,
                format!("unknown annotation; did you mean \"{}{near}\"?", keys::PREFIX),
            ),
            None => self.warn(key, "unknown annotation; it is ignored"),
        }
    }
}

/// Whether `exposed_ports` has the shape Go's `json.Unmarshal` accepts for ingress-gce's
/// `map[int32]NegAttributes`: null, or an object whose keys are 32-bit integers and whose values
/// are null or objects with an optional string `name` (other keys ignored, as Go does).
fn exposed_ports_valid(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => true,
        Value::Object(ports) => ports.iter().all(|(port, attributes)| {
            port.parse::<i32>().is_ok()
                && match attributes {
                    Value::Null => true,
                    Value::Object(a) => matches!(a.get("name"), None | Some(Value::Null | Value::String(_))),
                    _ => false,
                }
        }),
        _ => false,
    }
}

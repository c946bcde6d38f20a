//! Annotation keys read from users and written back by the controller.
//!
//! Keys borrowed from ingress-gce keep their names so users can switch controllers without
//! editing their manifests; our own keys live under [`PREFIX`].

/// Our own annotation prefix. An unknown key under it is reported, so typos are visible.
pub const PREFIX: &str = "cloud-lb-controller.io/";

/// Legacy class selection, used when an Ingress has no `spec.ingressClassName`.
pub const INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
/// On an IngressClass: this class handles Ingresses that name no class.
pub const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";

// --- Ingress annotations read (ingress-gce names) -------------------------------------------
/// `"false"` turns off the plain-HTTP listener on :80.
pub const ALLOW_HTTP: &str = "kubernetes.io/ingress.allow-http";
/// Name of a reserved global static address to use.
pub const STATIC_IP: &str = "kubernetes.io/ingress.global-static-ip-name";
/// Comma-separated names of certificates that already exist in the cloud.
pub const PRE_SHARED_CERT: &str = "ingress.gcp.kubernetes.io/pre-shared-cert";

// --- Ingress annotations read (ours) ---------------------------------------------------------
/// `"true"`: :80 answers every request with a redirect to https.
pub const REDIRECT_TO_HTTPS: &str = "cloud-lb-controller.io/redirect-to-https";
/// The redirect's status code: 301 (default), 302, 303, 307 or 308.
pub const REDIRECT_RESPONSE_CODE: &str = "cloud-lb-controller.io/redirect-response-code";
/// Name of an existing cloud SSL policy to attach to the HTTPS listener.
pub const SSL_POLICY: &str = "cloud-lb-controller.io/ssl-policy";

// --- Service annotations read ----------------------------------------------------------------
/// ingress-gce's JSON map from port name (or number) to `HTTP`, `HTTPS` or `HTTP2`.
pub const APP_PROTOCOLS: &str = "cloud.google.com/app-protocols";
/// The older name of [`APP_PROTOCOLS`], read when that is absent (as ingress-gce does).
pub const APP_PROTOCOLS_LEGACY: &str = "service.alpha.kubernetes.io/app-protocols";
/// ingress-gce's container-native load balancing switch, JSON: `{"ingress": true}` serves the
/// Service's ports straight at its pods (network endpoint groups), `{"ingress": false}` through
/// node ports; absent, the controller's `--neg-default` decides. `exposed_ports` and `zones`
/// (standalone NEGs in ingress-gce) are accepted and ignored.
pub const NEG: &str = "cloud.google.com/neg";
/// Health-check request path (default `/`).
pub const HEALTH_CHECK_PATH: &str = "cloud-lb-controller.io/health-check-path";
/// Health-check port (default: the serving node port).
pub const HEALTH_CHECK_PORT: &str = "cloud-lb-controller.io/health-check-port";
/// Health-check `Host` header.
pub const HEALTH_CHECK_HOST: &str = "cloud-lb-controller.io/health-check-host";
/// Seconds between health checks.
pub const HEALTH_CHECK_INTERVAL: &str = "cloud-lb-controller.io/health-check-interval-sec";
/// Seconds a health check may take (at most the interval).
pub const HEALTH_CHECK_TIMEOUT: &str = "cloud-lb-controller.io/health-check-timeout-sec";
/// Consecutive successes before a backend is healthy.
pub const HEALTHY_THRESHOLD: &str = "cloud-lb-controller.io/healthy-threshold";
/// Consecutive failures before a backend is unhealthy.
pub const UNHEALTHY_THRESHOLD: &str = "cloud-lb-controller.io/unhealthy-threshold";
/// Seconds the load balancer waits for a backend's response.
pub const BACKEND_TIMEOUT: &str = "cloud-lb-controller.io/backend-timeout-sec";
/// Seconds existing connections may finish when a node leaves.
pub const CONNECTION_DRAINING_TIMEOUT: &str = "cloud-lb-controller.io/connection-draining-timeout-sec";

// --- Written by the controller on the Ingress (ingress-gce names) ----------------------------
pub const URL_MAP: &str = "ingress.kubernetes.io/url-map";
pub const REDIRECT_URL_MAP: &str = "ingress.kubernetes.io/redirect-url-map";
pub const FORWARDING_RULE: &str = "ingress.kubernetes.io/forwarding-rule";
pub const HTTPS_FORWARDING_RULE: &str = "ingress.kubernetes.io/https-forwarding-rule";
pub const TARGET_PROXY: &str = "ingress.kubernetes.io/target-proxy";
pub const HTTPS_TARGET_PROXY: &str = "ingress.kubernetes.io/https-target-proxy";
pub const SSL_CERT: &str = "ingress.kubernetes.io/ssl-cert";
pub const BACKENDS: &str = "ingress.kubernetes.io/backends";

// --- Written by the controller (ours) --------------------------------------------------------
/// Machine-readable state: JSON `{"state": "Ready|Provisioning|Error", "reason", "message",
/// "observedGeneration"}`, because an Ingress has no conditions field.
pub const STATE: &str = "cloud-lb-controller.io/state";

/// Every key under [`PREFIX`] that is valid on an Ingress.
pub const KNOWN_INGRESS_KEYS: &[&str] = &[REDIRECT_TO_HTTPS, REDIRECT_RESPONSE_CODE, SSL_POLICY, STATE];

/// Every key under [`PREFIX`] that is valid on a Service.
pub const KNOWN_SERVICE_KEYS: &[&str] = &[
    HEALTH_CHECK_PATH,
    HEALTH_CHECK_PORT,
    HEALTH_CHECK_HOST,
    HEALTH_CHECK_INTERVAL,
    HEALTH_CHECK_TIMEOUT,
    HEALTHY_THRESHOLD,
    UNHEALTHY_THRESHOLD,
    BACKEND_TIMEOUT,
    CONNECTION_DRAINING_TIMEOUT,
];

/// ingress-gce annotations this controller does not implement: reported as warnings rather than
/// silently ignored, so a user switching controllers knows what did not carry over.
pub const UNSUPPORTED_INGRESS_GCE_KEYS: &[&str] = &[
    "kubernetes.io/ingress.regional-static-ip-name",
    "networking.gke.io/managed-certificates",
    "networking.gke.io/v1beta1.FrontendConfig",
    "networking.gke.io/suppress-firewall-xpn-error",
];

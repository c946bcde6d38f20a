//! The log of every request the server answered, so tests can assert what a client did — for
//! example that a controller only used the (verb, resource, subresource) its RBAC role grants.

/// One answered request.
///
/// For resource requests `verb` is the Kubernetes RBAC verb (`get`, `list`, `watch`, `create`,
/// `update`, `patch`, `delete`, `deletecollection`) and `resource` is set. For everything else
/// (discovery, `/version`, OpenAPI) `resource` is empty and `verb` is the lower-case HTTP method,
/// which is how RBAC names verbs on non-resource URLs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// RBAC verb (see above).
    pub verb: String,
    /// API group; empty for the core group.
    pub group: String,
    /// API version (`v1`); empty for non-resource requests.
    pub version: String,
    /// Plural resource, e.g. `ingresses`; empty for non-resource requests.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path (without the query).
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// `User-Agent` header. kubectl sends `kubectl/…`; kube-rs 5 sends none unless one is added
    /// through `kube::Config::headers`, which is how a test tells a controller's requests apart.
    pub user_agent: Option<String>,
    /// HTTP status of the response.
    pub status: u16,
    /// When the request arrived (the records are kept in the order the answers were sent).
    pub received_at: std::time::SystemTime,
}

impl RequestRecord {
    /// Whether this was a request for an API resource (as opposed to discovery and the like).
    pub fn is_resource_request(&self) -> bool {
        !self.resource.is_empty()
    }
}

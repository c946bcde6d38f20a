//! Per-kind semantics: validation, server defaults, references, and the custom verbs.
//!
//! `normalize` is called with the full new object on insert, update and patch; it validates the
//! fields, writes the defaults a read shows, rewrites references to full self links and returns
//! the keys the object references (for 404 checks and in-use checks on delete).

mod address;
mod backend_service;
mod firewall;
mod forwarding_rule;
mod health_check;
pub(crate) mod instance;
mod instance_group;
pub(crate) mod network;
mod network_endpoint_group;
pub(crate) mod rules;
mod ssl_certificate;
pub(crate) mod ssl_policy;
mod target_proxy;
pub(crate) mod url_map;

pub(crate) use backend_service::{forced_down, get_health, member_health, serving_port};
pub(crate) use instance_group::list_instances;
pub(crate) use network_endpoint_group::list_endpoints;

use serde_json::Value;

use crate::config::Limits;
use crate::errors::ApiError;
use crate::json::{Obj, as_str, check_labels, opt_array, opt_obj};
use crate::kinds::{Key, Kind, RefError, parse_path, resolve_ref};
use crate::mutation::{CustomVerb, check_fingerprint};
use crate::operations::OpKey;
use crate::store::{Entry, Store};

/// What a mutation is checked against.
pub(crate) struct Cx<'a> {
    pub store: &'a Store,
    pub limits: &'a Limits,
    /// The resource being changed.
    pub key: &'a Key,
    /// The operation the change runs under, when re-checked at completion.
    pub own: Option<&'a OpKey>,
}

impl<'a> Cx<'a> {
    /// The stored entry of `key`: 404 when absent, 400 `resourceNotReady` while its insert is
    /// still running.
    pub(crate) fn lookup(&self, key: &Key) -> Result<&'a Entry, ApiError> {
        self.store.get(key).ok_or_else(|| self.missing(key))
    }

    /// `key` must exist ([`Store::exists`]: stored, or a network its project starts with).
    pub(crate) fn require(&self, key: &Key) -> Result<(), ApiError> {
        if self.store.exists(key) {
            Ok(())
        } else {
            Err(self.missing(key))
        }
    }

    /// Why `key` cannot be used: its insert is still running, or it does not exist.
    fn missing(&self, key: &Key) -> ApiError {
        match self.store.pending.get(key) {
            Some(op) if Some(op) != self.own => ApiError::not_ready(&key.path()),
            _ => ApiError::not_found(&key.path()),
        }
    }

    /// Every reference must name an existing resource.
    pub(crate) fn check_refs(&self, refs: &[Key]) -> Result<(), ApiError> {
        refs.iter().try_for_each(|r| self.require(r))
    }

    /// A check Compute makes inside the operation, not at the request (resource quotas, one
    /// load-balanced group per instance, a network in use): run when the mutation is
    /// re-checked at completion, where its error fails the operation; skipped at the request.
    pub(crate) fn in_operation(&self, check: impl FnOnce() -> Result<(), ApiError>) -> Result<(), ApiError> {
        match self.own {
            Some(_) => check(),
            None => Ok(()),
        }
    }

    /// Parses a reference to one of `kinds`, in any form Compute accepts (full URL, partial
    /// path from `projects/`, path relative to the project).
    pub(crate) fn parse_ref(&self, s: &str, field: &str, kinds: &[Kind]) -> Result<Key, ApiError> {
        resolve_ref(s, &self.key.project)
            .and_then(|key| {
                if kinds.contains(&key.kind) {
                    Ok(key)
                } else {
                    Err(RefError::Collection(key.kind.collection().to_string()))
                }
            })
            .map_err(|e| ref_error(field, s, e))
    }

    /// A reference field: parsed, rewritten to the full self link, returned.
    pub(crate) fn ref_field(
        &self,
        obj: &mut Obj,
        name: &str,
        field: &str,
        kinds: &[Kind],
    ) -> Result<Option<Key>, ApiError> {
        let Some(s) = ref_text(obj, name, field)? else {
            return Ok(None);
        };
        let key = self.parse_ref(&s, field, kinds)?;
        obj.insert(name.to_string(), key.link().into());
        Ok(Some(key))
    }

    /// A list of references, rewritten in place.
    pub(crate) fn ref_list(
        &self,
        obj: &mut Obj,
        name: &str,
        field: &str,
        kinds: &[Kind],
    ) -> Result<Vec<Key>, ApiError> {
        let items = opt_array(obj, name, field)?.to_vec();
        let mut keys = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let key = self.parse_ref(as_str(v, &f)?, &f, kinds)?;
            keys.push(key);
        }
        if keys.is_empty() {
            obj.shift_remove(name);
        } else {
            let links: Vec<Value> = keys.iter().map(|k| Value::String(k.link())).collect();
            obj.insert(name.to_string(), Value::Array(links));
        }
        Ok(keys)
    }

    /// The project of the resource being changed.
    pub(crate) fn project(&self) -> &str {
        &self.key.project
    }

    /// The `network` field, `default` (a path relative to the project, e.g.
    /// `global/networks/default`) when absent: a reference to a network. The key is returned for
    /// [`Cx::check_refs`] (it must exist) and in-use checks.
    pub(crate) fn network_field(
        &self,
        obj: &mut Obj,
        default: Option<&str>,
    ) -> Result<Option<Key>, ApiError> {
        if let Some(default) = default
            && is_absent(obj.get("network"))
        {
            obj.insert("network".into(), default.into());
        }
        self.ref_field(obj, "network", "resource.network", &[Kind::Network])
    }

    /// The `network` ([`Cx::network_field`]) and `subnetwork` fields of a resource on a
    /// network; returns the network. Subnetworks are not modelled: the link must be well formed
    /// and regional, it is not checked further.
    pub(crate) fn network_refs(&self, obj: &mut Obj, default: Option<&str>) -> Result<Option<Key>, ApiError> {
        let network = self.network_field(obj, default)?;
        if let Some(s) = ref_text(obj, "subnetwork", "resource.subnetwork")? {
            let link =
                subnetwork_link(&s, self.project()).map_err(|e| ref_error("resource.subnetwork", &s, e))?;
            obj.insert("subnetwork".into(), link.into());
        }
        Ok(network)
    }
}

/// Whether a reference field is absent: missing, null or empty.
fn is_absent(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(v) => v.as_str() == Some(""),
    }
}

/// The text of a reference field; an absent one ([`is_absent`]) is removed and `None`.
fn ref_text(obj: &mut Obj, name: &str, field: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        v if is_absent(v) => {
            obj.shift_remove(name);
            Ok(None)
        }
        Some(v) => Ok(Some(as_str(v, field)?.to_string())),
        None => Ok(None),
    }
}

/// The canonical link of a subnetwork reference (`regions/r/subnetworks/s` in any form).
pub(crate) fn subnetwork_link(s: &str, project: &str) -> Result<String, RefError> {
    let r = parse_path(s, project).ok_or(RefError::Malformed)?;
    match (&r.scope, r.collection.as_str()) {
        (crate::kinds::Scope::Region(_), "subnetworks") => Ok(r.link()),
        (_, "subnetworks") => Err(RefError::Malformed),
        (_, c) if Kind::from_collection(c).is_some() => Err(RefError::Collection(c.to_string())),
        _ => Err(RefError::Malformed),
    }
}

/// The 400 for a refused reference, in the API's wording.
pub(crate) fn ref_error(field: &str, value: &str, e: RefError) -> ApiError {
    match e {
        RefError::Malformed => ApiError::invalid_field(field, value, "The URL is malformed."),
        RefError::Collection(c) => {
            ApiError::invalid_field(field, value, &format!("Unexpected resource collection '{c}'."))
        }
    }
}

/// Validates and completes a new or changed object; returns its references.
pub(crate) fn normalize(cx: &Cx, obj: &mut Obj, old: Option<&Entry>) -> Result<Vec<Key>, ApiError> {
    let old = old.map(|e| &e.obj);
    match cx.key.kind {
        Kind::Address => address::normalize(cx, obj),
        Kind::BackendService => backend_service::normalize(cx, obj, old),
        Kind::Firewall => firewall::normalize(cx, obj),
        Kind::ForwardingRule => forwarding_rule::normalize(cx, obj, old),
        Kind::HealthCheck => health_check::normalize(obj),
        Kind::HttpHealthCheck => health_check::normalize_legacy(obj),
        Kind::InstanceGroup => instance_group::normalize(cx, obj),
        Kind::Network => network::normalize(obj),
        Kind::NetworkEndpointGroup => network_endpoint_group::normalize(cx, obj),
        Kind::SslCertificate => ssl_certificate::normalize(obj),
        Kind::SslPolicy => ssl_policy::normalize(obj),
        Kind::TargetHttpProxy | Kind::TargetHttpsProxy => target_proxy::normalize(cx, obj),
        Kind::UrlMap => url_map::normalize(cx, obj),
        Kind::Instance | Kind::Operation => Err(ApiError::invalid(format!(
            "The {} collection is read-only.",
            cx.key.kind.collection()
        ))),
    }
}

/// Applies a custom verb to a copy of the stored entry.
pub(crate) fn custom(cx: &Cx, verb: CustomVerb, old: &Entry, body: &Obj) -> Result<Entry, ApiError> {
    let mut next = old.clone();
    match (cx.key.kind, verb) {
        (Kind::Address | Kind::ForwardingRule, CustomVerb::SetLabels) => {
            set_labels(&mut next.obj, body)?;
        }
        (Kind::ForwardingRule, CustomVerb::SetTarget) => {
            forwarding_rule::set_target(cx, &mut next, body)?;
        }
        (Kind::TargetHttpProxy | Kind::TargetHttpsProxy, CustomVerb::SetUrlMap)
        | (
            Kind::TargetHttpsProxy,
            CustomVerb::SetSslCertificates | CustomVerb::SetSslPolicy | CustomVerb::SetQuicOverride,
        ) => {
            target_proxy::custom(cx, verb, &mut next, body)?;
        }
        (
            Kind::InstanceGroup,
            CustomVerb::AddInstances | CustomVerb::RemoveInstances | CustomVerb::SetNamedPorts,
        ) => {
            instance_group::custom(cx, verb, &mut next, body)?;
        }
        (
            Kind::NetworkEndpointGroup,
            CustomVerb::AttachNetworkEndpoints | CustomVerb::DetachNetworkEndpoints,
        ) => {
            network_endpoint_group::custom(cx, verb, &mut next, body)?;
        }
        (kind, verb) => {
            return Err(ApiError::invalid(format!(
                "Method '{}' is not supported on {}.",
                verb.name(),
                kind.collection()
            )));
        }
    }
    Ok(next)
}

/// `setLabels`: replaces the labels; the label fingerprint must match.
fn set_labels(obj: &mut Obj, body: &Obj) -> Result<(), ApiError> {
    check_fingerprint(obj, body, "labelFingerprint", true)?;
    check_labels(body, "labels")?;
    match opt_obj(body, "labels", "labels")? {
        Some(l) if !l.is_empty() => {
            obj.insert("labels".into(), Value::Object(l.clone()));
        }
        _ => {
            obj.shift_remove("labels");
        }
    }
    Ok(())
}

/// The private key an insert of a self-managed SSL certificate carries (checked by
/// [`normalize`] already), to keep apart from the stored JSON.
pub(crate) fn private_key(kind: Kind, body: &Obj) -> Option<String> {
    match kind {
        Kind::SslCertificate => ssl_certificate::private_key(body),
        _ => None,
    }
}

/// Fills what the server allocates when the change is applied (IP addresses).
pub(crate) fn allocate(store: &mut Store, key: &Key, obj: &mut Obj) {
    match key.kind {
        Kind::Address => address::allocate(store, obj),
        Kind::ForwardingRule => forwarding_rule::allocate(store, obj),
        _ => {}
    }
}

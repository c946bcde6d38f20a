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
mod network_endpoint_group;
mod ssl_certificate;
pub(crate) mod ssl_policy;
mod target_proxy;
pub(crate) mod url_map;

pub(crate) use backend_service::get_health;
pub(crate) use instance_group::list_instances;
pub(crate) use network_endpoint_group::list_endpoints;

use serde_json::Value;

use crate::config::Limits;
use crate::errors::ApiError;
use crate::json::{Obj, as_str, check_labels, opt_array, opt_obj};
use crate::kinds::{Key, Kind, parse_ref};
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
        if let Some(e) = self.store.get(key) {
            return Ok(e);
        }
        match self.store.pending.get(key) {
            Some(op) if Some(op) != self.own => Err(ApiError::not_ready(&key.path())),
            _ => Err(ApiError::not_found(&key.path())),
        }
    }

    /// Every reference must name an existing resource.
    pub(crate) fn check_refs(&self, refs: &[Key]) -> Result<(), ApiError> {
        for r in refs {
            self.lookup(r)?;
        }
        Ok(())
    }

    /// Parses a reference to one of `kinds`.
    pub(crate) fn parse_ref(&self, s: &str, field: &str, kinds: &[Kind]) -> Result<Key, ApiError> {
        let key = parse_ref(s, &self.key.project)
            .ok_or_else(|| ApiError::invalid_field(field, s, "The URL is malformed."))?;
        if !kinds.contains(&key.kind) {
            return Err(ApiError::invalid_field(
                field,
                s,
                &format!("Unexpected resource collection '{}'.", key.kind.collection()),
            ));
        }
        Ok(key)
    }

    /// A reference field: parsed, rewritten to the full self link, returned.
    pub(crate) fn ref_field(
        &self,
        obj: &mut Obj,
        name: &str,
        field: &str,
        kinds: &[Kind],
    ) -> Result<Option<Key>, ApiError> {
        let Some(v) = obj.get(name) else {
            return Ok(None);
        };
        if v.is_null() || v.as_str() == Some("") {
            obj.shift_remove(name);
            return Ok(None);
        }
        let s = as_str(v, field)?.to_string();
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

/// Fills what the server allocates when the change is applied (IP addresses).
pub(crate) fn allocate(store: &mut Store, key: &Key, obj: &mut Obj) {
    match key.kind {
        Kind::Address => address::allocate(store, obj),
        Kind::ForwardingRule => forwarding_rule::allocate(store, obj),
        _ => {}
    }
}

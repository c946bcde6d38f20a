//! Kubernetes Events on Ingresses (events.k8s.io/v1), with the reasons users filter by.
//!
//! kube-runtime's recorder folds repeats by reason alone and keeps the first message; when a
//! user fixes one problem and meets the next, that would show the stale message. This
//! publisher folds only exact repeats (same reason and message) into a series.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// The Ingress's spec (or a Service or Secret it uses) is invalid: nothing was changed in the cloud.
pub const TRANSLATE: &str = "Translate";
/// Something in the Ingress's configuration works but deserves attention (e.g. an unknown
/// annotation key, an expiring certificate).
pub const CONFIG_WARNING: &str = "ConfigWarning";
/// The load balancer was changed to match the Ingress.
pub const SYNC: &str = "Sync";
/// Bringing the cloud in line failed; the message starts with the error category.
pub const SYNC_FAILED: &str = "SyncFailed";
/// The load balancer was created.
pub const CREATED: &str = "Created";
/// The Ingress's address was set or changed.
pub const IP_ASSIGNED: &str = "IPAssigned";
/// The load balancer was deleted (Ingress deleted, or no longer of our class).
pub const DELETED: &str = "Deleted";
/// Part of the cluster's infrastructure could not be built (e.g. a node whose VM does not
/// exist); the load balancer uses what could be.
pub const INFRASTRUCTURE: &str = "InfrastructureWarning";
/// The health-check firewall rule needs a change the controller may not make itself.
pub const FIREWALL_CHANGE_REQUIRED: &str = "FirewallChangeRequired";
/// A backend service of the load balancer has instances and none of them is healthy: requests
/// routed to it fail. Also the `Degraded` state's reason.
pub const NO_HEALTHY_BACKEND: &str = "NoHealthyBackend";
/// Every backend told to have no healthy instance is seen with one again, or is no longer used.
pub const BACKEND_RECOVERED: &str = "BackendRecovered";

/// An endpoint backend (a Service port served straight at its pods) has no endpoint that may
/// take traffic: requests routed to it fail. Also the `Degraded` state's reason.
pub const NO_READY_ENDPOINTS: &str = "NoReadyEndpoints";
/// Every endpoint backend told to have no ready endpoint has one again (or is no longer used).
pub const ENDPOINTS_READY: &str = "EndpointsReady";
/// A backend's health check follows its pods' readiness probe (told when that starts or the
/// probe changes).
pub const HEALTH_CHECK_FROM_PROBE: &str = "HealthCheckFromProbe";
/// The pods have a readiness probe the health check cannot follow (exec, TCP, another port…):
/// the default health check is used, the message says why.
pub const HEALTH_CHECK_PROBE_IGNORED: &str = "HealthCheckProbeIgnored";
/// A backend's health check went back to the defaults (the pods no longer have a probe).
pub const HEALTH_CHECK_DEFAULTS: &str = "HealthCheckDefaults";

/// How long a published event is remembered for folding repeats.
const FOLD_WINDOW: Duration = Duration::from_secs(6 * 60);
/// The API's limit on a note.
const MAX_NOTE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    uid: String,
    kind: Kind,
    reason: String,
    note: String,
}

struct Published {
    namespace: String,
    name: String,
    count: i32,
    at: Timestamp,
}

/// Publishes Events as one controller instance.
pub struct Events {
    client: Client,
    controller: String,
    instance: String,
    /// Events are written only while this replica may write.
    fence: cloud::WriteFence,
    recent: Mutex<HashMap<Key, Published>>,
}

impl Events {
    pub fn new(client: Client, controller: &str, instance: &str, fence: cloud::WriteFence) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
            fence,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes an event about `regarding`. Failure is logged, never returned: an Event that
    /// could not be written must not stop the load balancer from being built.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        if !self.fence.allows() {
            tracing::debug!(reason, "not the leader now: event not published");
            return;
        }
        let note = &*super::report::bounded(note, MAX_NOTE);
        match kind {
            Kind::Warning => tracing::warn!(reason, message = note, "event"),
            Kind::Normal => tracing::info!(reason, message = note, "event"),
        }
        if let Err(e) = self.write(regarding, kind, reason, action, note).await {
            tracing::warn!(reason, error = %e, "could not publish the event");
        }
    }

    async fn write(
        &self,
        regarding: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            uid: regarding.uid.clone().unwrap_or_default(),
            kind,
            reason: reason.to_owned(),
            note: note.to_owned(),
        };
        let mut recent = self.recent.lock().await;
        let window = jiff::SignedDuration::try_from(FOLD_WINDOW).unwrap_or_default();
        recent.retain(|_, p| p.at + window > now);
        if let Some(p) = recent.get_mut(&key) {
            p.count += 1;
            p.at = now;
            let patch = serde_json::json!({
                "series": EventSeries { count: p.count, last_observed_time: MicroTime(now) }
            });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &p.namespace);
            api.patch(&p.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            return Ok(());
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let name = event_name(regarding.name.as_deref().unwrap_or_default(), now.as_nanosecond());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(match kind {
                Kind::Normal => "Normal".to_owned(),
                Kind::Warning => "Warning".to_owned(),
            }),
            reason: Some(reason.to_owned()),
            action: Some(action.to_owned()),
            note: Some(note.to_owned()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        api.create(&PostParams::default(), &event).await?;
        recent.insert(
            key,
            Published {
                namespace,
                name,
                count: 1,
                at: now,
            },
        );
        Ok(())
    }
}

/// The longest object name the API accepts (a DNS subdomain).
const MAX_NAME: usize = 253;

/// A unique Event name about the object `object`: as much of its name as fits, then
/// `.<nanoseconds, hex>`; always a valid name, however long the object's own is.
fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!(".{nanos:x}");
    let mut end = object.len().min(MAX_NAME - suffix.len());
    while !object.is_char_boundary(end) {
        end -= 1;
    }
    // A label may not end in `-`, and `..` is no name.
    let prefix = object[..end].trim_end_matches(['-', '.']);
    let prefix = if prefix.is_empty() { "event" } else { prefix };
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_fit_whatever_the_object_name() {
        let nanos = 1_700_000_000_123_456_789_i128;
        assert_eq!(event_name("web", nanos), format!("web.{nanos:x}"));
        for object in [
            "a".repeat(253),
            format!("{}-b", "a".repeat(236)),
            format!("{}.b", "a".repeat(236)),
            String::new(),
        ] {
            let name = event_name(&object, nanos);
            assert!(name.len() <= MAX_NAME, "{} > {MAX_NAME}", name.len());
            assert!(name.ends_with(&format!(".{nanos:x}")));
            assert!(!name.contains("-.") && !name.contains(".."), "{name}");
            assert!(name.starts_with(|c: char| c.is_ascii_alphanumeric()), "{name}");
        }
    }
}

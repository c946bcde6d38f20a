//! Which Ingresses this controller serves.
//!
//! In order of precedence:
//! 1. the legacy annotation `kubernetes.io/ingress.class`, when present and not empty: ours iff
//!    it equals [`Config::legacy_class`] (`gce` by default). An empty value counts as absent,
//!    as ingress-gce treats it;
//! 2. `spec.ingressClassName`: ours iff the IngressClass of that name has `spec.controller`
//!    equal to [`Config::controller_name`]. When no IngressClass of that name exists, ours iff
//!    the name equals the legacy class, so `ingressClassName: gce` works on clusters where no
//!    one created the IngressClass object (as on GKE, where `gce` has none);
//! 3. neither: ours iff an IngressClass with our controller is marked
//!    `ingressclass.kubernetes.io/is-default-class: "true"`.

use super::{Config, Objects};
use crate::annotations as keys;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

/// Whether this controller serves the Ingress; see the module documentation.
pub(crate) fn is_ours(ingress: &Ingress, objects: &dyn Objects, config: &Config) -> bool {
    let legacy = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(keys::INGRESS_CLASS))
        .filter(|v| !v.is_empty());
    if let Some(class) = legacy {
        return *class == config.legacy_class;
    }
    let classes = objects.ingress_classes();
    let ours = |class: &IngressClass| {
        class.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(config.controller_name.as_str())
    };
    match ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty())
    {
        Some(name) => match classes.iter().find(|c| c.metadata.name.as_deref() == Some(name)) {
            Some(class) => ours(class),
            None => name == config.legacy_class,
        },
        None => classes.iter().any(|class| {
            ours(class)
                && class
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(keys::DEFAULT_CLASS))
                    .map(String::as_str)
                    == Some("true")
        }),
    }
}

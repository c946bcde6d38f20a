//! The manifests in `deploy/`: reading them, and the RBAC rules they grant, for the manifest and
//! RBAC tests.
#![allow(dead_code)]

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The kustomize base's resource files, as `deploy/kustomization.yaml` lists them.
pub fn resource_files() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).expect("kustomization.yaml");
    let kustomization: Value = serde_saphyr::from_str(&text).expect("kustomization.yaml is YAML");
    kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| deploy_dir().join(r.as_str().expect("a resource is a path")))
        .collect()
}

/// Every document of a YAML file, nulls (empty documents) dropped.
pub fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    documents_of(&text, &path.display().to_string())
}

pub fn documents_of(text: &str, what: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{what}: not YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Every object of the kustomize base, read from its files (no kustomize involved).
pub fn base_objects() -> Vec<Value> {
    resource_files().iter().flat_map(|f| documents(f)).collect()
}

/// The one object of `kind` named `name`.
pub fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} {name}");
    found[0]
}

/// Where a rule applies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// A ClusterRole bound cluster-wide: every namespace and cluster-scoped objects.
    Cluster,
    /// A Role: this namespace only.
    Namespace(String),
}

/// One (scope, group, resource[/subresource], verb, name) a rule grants.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub scope: Scope,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub verb: String,
    /// `None`: any name.
    pub name: Option<String>,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = match &self.scope {
            Scope::Cluster => "cluster".to_owned(),
            Scope::Namespace(ns) => format!("namespace {ns}"),
        };
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{scope}: {} {group}/{}", self.verb, self.resource)?;
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

fn expand(scope: &Scope, rules: &[PolicyRule], out: &mut Vec<Grant>) {
    for rule in rules {
        assert!(
            rule.non_resource_urls.as_ref().is_none_or(|u| u.is_empty()),
            "nonResourceURLs are not needed: {rule:?}"
        );
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        let names = rule.resource_names.clone().unwrap_or_default();
        for list in [&groups, &resources, &rule.verbs, &names] {
            assert!(!list.iter().any(|v| v.contains('*')), "a wildcard in {rule:?}");
        }
        assert!(
            !groups.is_empty() && !resources.is_empty() && !rule.verbs.is_empty(),
            "an empty rule: {rule:?}"
        );
        let names: Vec<Option<String>> = if names.is_empty() {
            vec![None]
        } else {
            names.into_iter().map(Some).collect()
        };
        for group in &groups {
            for resource in &resources {
                for verb in &rule.verbs {
                    for name in &names {
                        out.push(Grant {
                            scope: scope.clone(),
                            group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// Everything the ClusterRole and the Role of `deploy/` grant, one entry per combination.
pub fn grants(objects: &[Value]) -> Vec<Grant> {
    let mut out = Vec::new();
    for o in objects {
        match o["kind"].as_str() {
            Some("ClusterRole") => {
                let role: ClusterRole = serde_json::from_value(o.clone()).expect("ClusterRole");
                expand(
                    &Scope::Cluster,
                    role.rules.as_deref().unwrap_or_default(),
                    &mut out,
                );
            }
            Some("Role") => {
                let role: Role = serde_json::from_value(o.clone()).expect("Role");
                let ns = role.metadata.namespace.clone().expect("the Role's namespace");
                expand(
                    &Scope::Namespace(ns),
                    role.rules.as_deref().unwrap_or_default(),
                    &mut out,
                );
            }
            _ => {}
        }
    }
    out
}

/// A request as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub verb: String,
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        match &self.namespace {
            Some(ns) => write!(f, " in {ns}")?,
            None => write!(f, " (all namespaces or cluster-scoped)")?,
        }
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

impl Grant {
    /// Whether this grant allows `access`, by Kubernetes RBAC's rules: a Role only in its
    /// namespace; resourceNames only for requests that name an object.
    pub fn allows(&self, access: &Access) -> bool {
        let scope = match &self.scope {
            Scope::Cluster => true,
            Scope::Namespace(ns) => access.namespace.as_deref() == Some(ns.as_str()),
        };
        let name = match &self.name {
            None => true,
            Some(n) => access.name.as_deref() == Some(n.as_str()),
        };
        scope
            && name
            && self.group == access.group
            && self.resource == access.resource
            && self.verb == access.verb
    }
}

/// The kubectl binary, or `None` (skip, with a message) when it is absent outside CI.
pub fn kubectl() -> Option<PathBuf> {
    let bin = std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| "kubectl".into());
    let works = Command::new(&bin)
        .args(["version", "--client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "kubectl ({}) is required when CI=true",
        bin.display()
    );
    eprintln!("skipping: kubectl ({}) not found", bin.display());
    None
}

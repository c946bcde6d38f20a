//! The cluster-wide resources: an unmanaged instance group per zone holding the nodes, with a
//! named port per node port in use, and the firewall rule that lets Google's health checkers
//! and proxies reach those ports and the pod ports of endpoint backends (pods are reached on
//! their alias IPs on the node VMs the rule targets).
//!
//! With endpoint backends only (no node port in use), no instance group is created, and
//! those left are deleted: nothing needs them, and a VM may be in one load-balanced group only,
//! so another controller of the nodes (GKE's) keeps its own. The zones of the nodes are
//! remembered all the same: each endpoint backend has a NEG per zone.

use super::apply::{Owner, combine};
use super::desired::named_port;
use super::links::{Collection, Scope};
use super::owner::Owner as Record;
use super::wire::{self, InstanceWithNamedPorts};
use super::{GceProvider, HEALTH_CHECK_RANGES, diff};
use crate::Error;
use crate::model::ClusterInfra;
use crate::provider::{InfraStatus, ResourceKind};
use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// At most this many instances per addInstances / removeInstances call.
const INSTANCE_BATCH: usize = 500;

impl GceProvider {
    pub(super) async fn ensure_infra(&self, infra: &ClusterInfra) -> Result<InfraStatus, Error> {
        let ig = self.namer.instance_group();
        let mut by_zone: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for node in &infra.nodes {
            by_zone.entry(node.zone.clone()).or_default().push(&node.instance);
        }
        // Zones we made groups in before, which may have lost their last node.
        let known: BTreeMap<String, String> = self.infra_state().groups.clone();
        for zone in known.keys() {
            by_zone.entry(zone.clone()).or_default();
        }
        // What the cloud holds decides what may go, not the caller's bookkeeping (which, after
        // a restart, may not know every load balancer still being deleted nor every endpoint
        // backend still serving): a node port stays while a backend service names it, a pod port
        // while an endpoint backend's endpoints have it. And what goes, goes only once nothing
        // has needed it for the removal grace: another writer of this cluster's resources (a
        // controller of another class) may have opened a port for a backend service it is about
        // to create.
        let firewall = self.read_firewall().await?;
        let ours = firewall
            .as_ref()
            .filter(|f| super::owner::owned_by(&f.description, &self.config.cluster_uid));
        let configured: BTreeSet<u16> = ours.map(firewall_ports).unwrap_or_default();
        // A pass that only adds (every port our rule allows is still asked for) needs no read of
        // what uses the ports: the usual case, a new load balancer on a new node port. Named
        // ports of the groups are then only added, never removed.
        let asked: BTreeSet<u16> = infra.node_ports.union(&infra.endpoint_ports).copied().collect();
        let grow_only = ours.is_some() && !infra.node_ports.is_empty() && configured.is_subset(&asked);
        let in_use = if grow_only {
            InUse::default()
        } else {
            self.infra_in_use().await?
        };
        let needed_nodes: BTreeSet<u16> = infra.node_ports.union(&in_use.ports).copied().collect();
        let endpoint_ports: BTreeSet<u16> = infra
            .endpoint_ports
            .union(&in_use.endpoint_ports)
            .copied()
            .collect();
        let needed: BTreeSet<u16> = needed_nodes.union(&endpoint_ports).copied().collect();
        let grace = self.config.removal_grace;
        let now = tokio::time::Instant::now();
        let (fw_ports, node_ports, teardown, recheck_after) = {
            let mut lingering = self.lingering.lock().unwrap_or_else(|p| p.into_inner());
            let (ports, ports_recheck) = lingering.ports(&configured, &needed, grace, now);
            let idle = needed.is_empty() && !in_use.load_balancers;
            let (teardown, teardown_recheck) = lingering.teardown(idle, grace, now);
            let recheck = [ports_recheck, teardown_recheck].into_iter().flatten().min();
            let node_ports = lingering.node_ports(&ports, &endpoint_ports, &needed_nodes);
            (ports, node_ports, teardown, recheck)
        };
        // Groups are made only for node ports in use; those there stay while a node port does
        // (one lingering for the grace too).
        let groups = Groups {
            create: !needed_nodes.is_empty(),
            keep: !node_ports.is_empty(),
        };
        let ports: Vec<wire::NamedPort> = node_ports
            .iter()
            .map(|p| wire::NamedPort {
                name: named_port(*p),
                port: *p,
            })
            .collect();

        let zones = join_all(by_zone.iter().map(|(zone, instances)| {
            self.ensure_group(zone, &ig, instances, &ports, teardown, grow_only, groups)
        }));
        let (zones, firewall) = tokio::join!(zones, self.ensure_firewall(firewall, &fw_ports, teardown));
        let mut groups = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut errors: Vec<Result<(), Error>> = Vec::new();
        for ((zone, _), result) in by_zone.iter().zip(zones) {
            let link = self
                .links()
                .link(&Scope::Zone(zone.clone()), Collection::InstanceGroups, &ig);
            match result {
                Ok(group) => {
                    if group.exists {
                        groups.insert(zone.clone(), link);
                    }
                    warnings.extend(group.warnings);
                }
                Err(e) => {
                    // A group we know exists stays in use; the zone is tried again next pass.
                    if known.contains_key(zone) {
                        groups.insert(zone.clone(), link);
                    }
                    errors.push(Err(e));
                }
            }
        }
        {
            // Load balancers use the groups that exist, whatever failed in other zones.
            let mut state = self.infra_state();
            state.zones = infra
                .nodes
                .iter()
                .map(|n| n.zone.clone())
                .chain(groups.keys().cloned())
                .collect();
            state.groups = groups.clone();
            state.ensured = true;
        }
        let firewall_change = match firewall {
            Ok(change) => change,
            Err(e) => {
                errors.push(Err(e));
                None
            }
        };
        combine(errors)?;
        let mut resources = BTreeMap::new();
        if !groups.is_empty() {
            resources.insert(
                ResourceKind::InstanceGroup,
                groups.keys().map(|z| format!("{z}/{ig}")).collect(),
            );
        }
        if !teardown {
            resources.insert(ResourceKind::Firewall, vec![self.namer.firewall()]);
        }
        Ok(InfraStatus {
            resources,
            warnings,
            firewall_change,
            recheck_after,
        })
    }

    /// The firewall rule under our name, as it is.
    async fn read_firewall(&self) -> Result<Option<wire::Firewall>, Error> {
        self.read(
            Collection::Firewalls,
            &self.network_scope(),
            &self.namer.firewall(),
        )
        .await
    }

    /// Reads, afresh, which node ports this cluster's backend services use, which pod ports
    /// its endpoint backends' endpoints have, and whether any of its load balancers is left.
    async fn infra_in_use(&self) -> Result<InUse, Error> {
        let (services, rules) = self
            .inventory
            .infra_view(&self.compute, tokio::time::Instant::now())
            .await
            .map_err(|e| e.into_error("reading the cluster's backend services and forwarding rules"))?;
        let cluster = &self.config.cluster_uid;
        let ours = |d: &str| super::owner::owned_by(d, cluster);
        let services: Vec<&wire::BackendService> =
            services.items.values().filter(|s| ours(&s.description)).collect();
        Ok(InUse {
            ports: services
                .iter()
                .filter_map(|s| s.port_name.as_deref().and_then(port_of_name))
                .collect(),
            endpoint_ports: self.endpoint_pod_ports(&services).await?,
            load_balancers: !services.is_empty() || rules.items.values().any(|r| ours(&r.description)),
        })
    }

    /// Makes the zone's group hold exactly `instances`, with `ports` named (and, when
    /// `grow_only`, those it names already); or, on `teardown` or when no group is wanted,
    /// deletes it.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_group(
        &self,
        zone: &str,
        name: &str,
        instances: &[&str],
        ports: &[wire::NamedPort],
        teardown: bool,
        grow_only: bool,
        wanted: Groups,
    ) -> Result<Group, Error> {
        let teardown = teardown || !wanted.keep;
        let scope = Scope::Zone(zone.to_owned());
        let links = self.links();
        let what = "instance group";
        let current: Option<wire::InstanceGroup> =
            self.read(Collection::InstanceGroups, &scope, name).await?;
        let Some(current) = current else {
            if teardown || instances.is_empty() || !wanted.create {
                return Ok(Group::default());
            }
            let desired = wire::InstanceGroup {
                name: name.to_owned(),
                description: Record::shared(&self.config.cluster_uid, None).describe(),
                named_ports: ports.to_vec(),
                network: Some(self.network_link()),
                ..Default::default()
            };
            if let Some(existing) = self
                .insert(what, Collection::InstanceGroups, &scope, &desired)
                .await?
            {
                self.check_owned(what, &existing, Owner::Cluster)?;
            }
            let warnings = self.add_members(zone, name, instances).await?;
            return Ok(Group {
                exists: true,
                warnings,
            });
        };
        self.check_owned(what, &current, Owner::Cluster)?;
        if teardown {
            // No backend service of ours is left; should something else still use the group, the
            // API refuses, and the error makes the caller try again later.
            self.remove(what, Collection::InstanceGroups, &scope, name)
                .await
                .map_err(|e| Error {
                    message: format!(
                        "{}; the cluster's instance group {zone}/{name} is kept and its deletion retried",
                        e.message
                    ),
                    ..e
                })?;
            return Ok(Group::default());
        }
        let members = self
            .members(zone, name)
            .await
            .map_err(|e| e.into_error(&format!("listing the instances of {what} {zone}/{name}")))?;
        let have: BTreeSet<&str> = members
            .iter()
            .map(|m| super::links::name_of(&m.instance))
            .collect();
        let want: BTreeSet<&str> = instances.iter().copied().collect();
        let add: Vec<&str> = want.difference(&have).copied().collect();
        let remove: Vec<String> = have
            .difference(&want)
            .map(|i| links.link(&scope, Collection::Instances, i))
            .collect();
        let warnings = match self.add_members(zone, name, &add).await {
            Ok(w) => w,
            Err(e) => return Err(self.explain_group_conflict(e).await),
        };
        self.change_members(zone, name, "removeInstances", &remove)
            .await?;

        let mut want_ports: BTreeSet<wire::NamedPort> = ports.iter().cloned().collect();
        if grow_only {
            want_ports.extend(current.named_ports.iter().cloned());
        }
        let have_ports: BTreeSet<wire::NamedPort> = current.named_ports.iter().cloned().collect();
        if have_ports != want_ports {
            let url = links.method_url(&scope, Collection::InstanceGroups, name, "setNamedPorts");
            let body = json!({ "namedPorts": want_ports, "fingerprint": current.fingerprint });
            self.call_method(what, name, "instanceGroups.setNamedPorts", url, body)
                .await?;
        }
        Ok(Group {
            exists: true,
            warnings,
        })
    }

    /// When `error` is Compute refusing a VM in two load-balanced instance groups, the same error
    /// told so the user can act: which other group holds the node, and the ways out. Costs a list
    /// of the zone's groups and of their members, on this error only.
    pub(super) async fn explain_group_conflict(&self, error: Error) -> Error {
        let Some(api) = super::api_error::of(&error) else {
            return error;
        };
        if !api.is_instance_in_another_load_balanced_group() {
            return error;
        }
        let instance = api.instance_named().unwrap_or_default().to_owned();
        let others = self.groups_holding(&instance).await;
        let which = if others.is_empty() {
            "another load-balanced instance group".to_owned()
        } else {
            format!("instance group {}", others.join(", "))
        };
        let node = super::links::name_of(&instance);
        let message = format!(
            "node VM {node} is already in {which}, which serves another load balancer (GKE's own Ingress \
             controller or another controller of the nodes), and Compute lets a VM be in one \
             load-balanced instance group only, so this cluster's group {} cannot be a backend. Ways \
             out: let the controller that owns {which} serve these Ingresses (or take the nodes out \
             of its groups), or serve the Services straight at their pods (container-native load balancing: \
             network endpoint groups, annotation cloud.google.com/neg), which needs no instance group \
             (Compute: {})",
            self.namer.instance_group(),
            error.message
        );
        Error { message, ..error }
    }

    /// Every instance of a zone's group.
    async fn members(
        &self,
        zone: &str,
        group: &str,
    ) -> Result<Vec<InstanceWithNamedPorts>, super::api_error::ApiError> {
        let scope = Scope::Zone(zone.to_owned());
        let url = self
            .links()
            .method_url(&scope, Collection::InstanceGroups, group, "listInstances");
        self.compute
            .post_list(
                "instanceGroups.listInstances",
                &url,
                &json!({ "instanceState": "ALL" }),
            )
            .await
    }

    /// The groups of other owners, in the instance's zone, that hold it.
    async fn groups_holding(&self, instance: &str) -> Vec<String> {
        let Some(zone) = super::links::zone_of(instance) else {
            return Vec::new();
        };
        let scope = Scope::Zone(zone.to_owned());
        let url = self.links().collection_url(&scope, Collection::InstanceGroups);
        let Ok(groups) = self
            .compute
            .list::<wire::InstanceGroup>("instanceGroups.list", &url, None)
            .await
        else {
            return Vec::new();
        };
        let mut holding = Vec::new();
        for group in groups.iter().filter(|g| g.name != self.namer.instance_group()) {
            let members = self.members(zone, &group.name).await.unwrap_or_default();
            if members
                .iter()
                .any(|m| super::links::same_resource(&m.instance, instance))
            {
                holding.push(format!("{zone}/{}", group.name));
            }
        }
        holding
    }

    /// Adds instances to a group. A node whose VM does not exist (a stale Node, a provider ID
    /// from another project) is left out with a warning rather than failing the whole group.
    async fn add_members(&self, zone: &str, name: &str, instances: &[&str]) -> Result<Vec<String>, Error> {
        let scope = Scope::Zone(zone.to_owned());
        let link = |i: &str| self.links().link(&scope, Collection::Instances, i);
        let all: Vec<String> = instances.iter().map(|i| link(i)).collect();
        match self.change_members(zone, name, "addInstances", &all).await {
            Ok(()) => Ok(Vec::new()),
            Err(e) if super::api_error::of(&e).is_some_and(|a| a.is_not_found()) => {
                // One of them is missing: add them one by one to tell which.
                let mut warnings = Vec::new();
                for instance in instances {
                    match self.change_members(zone, name, "addInstances", &[link(instance)]).await {
                        Ok(()) => {}
                        Err(e) if super::api_error::of(&e).is_some_and(|a| a.is_not_found()) => warnings.push(format!(
                            "node {instance}: no VM {instance} in zone {zone} of project {}; the node is left out of the \
                             load balancers (check its spec.providerID)",
                            self.links().project()
                        )),
                        Err(e) => return Err(e),
                    }
                }
                Ok(warnings)
            }
            Err(e) => Err(e),
        }
    }

    async fn change_members(
        &self,
        zone: &str,
        name: &str,
        method: &str,
        instances: &[String],
    ) -> Result<(), Error> {
        let scope = Scope::Zone(zone.to_owned());
        for batch in instances.chunks(INSTANCE_BATCH) {
            let url = self
                .links()
                .method_url(&scope, Collection::InstanceGroups, name, method);
            let body =
                json!({ "instances": batch.iter().map(|i| json!({ "instance": i })).collect::<Vec<_>>() });
            let result = self
                .call_method(
                    "instance group",
                    name,
                    &format!("instanceGroups.{method}"),
                    url,
                    body,
                )
                .await;
            // Adding a member already there (a crash between two passes) is not a failure.
            if let Err(e) = result
                && super::api_error::of(&e).is_none_or(|a| a.reason != "memberAlreadyExists")
            {
                return Err(e);
            }
        }
        Ok(())
    }

    /// The firewall rule. Returns a warning instead of failing when the controller may not write
    /// firewall rules (Shared VPC): a network administrator must then run the command it gives.
    async fn ensure_firewall(
        &self,
        current: Option<wire::Firewall>,
        ports: &BTreeSet<u16>,
        teardown: bool,
    ) -> Result<Option<String>, Error> {
        let name = self.namer.firewall();
        let what = "firewall rule";
        let scope = self.network_scope();
        if teardown {
            return match current {
                Some(c) if super::owner::owned_by(&c.description, &self.config.cluster_uid) => self
                    .remove(what, Collection::Firewalls, &scope, &name)
                    .await
                    .map(|_| None),
                _ => Ok(None),
            };
        }
        let desired = self.desired_firewall(ports);
        if desired.allowed.iter().all(|a| a.ports.is_empty()) {
            // A rule with no port list allows every port: never write one.
            return Ok(None);
        }
        let exists = current.is_some();
        let result = match current {
            None => self
                .insert(what, Collection::Firewalls, &scope, &desired)
                .await
                .map(|_| ()),
            Some(current) => {
                self.check_owned(what, &current, Owner::Cluster)?;
                let changes = diff::firewall(&current, &desired);
                if changes.is_empty() {
                    return Ok(None);
                }
                tracing::info!(name, ?changes, "updating firewall rule");
                let url = self.links().resource_url(&scope, Collection::Firewalls, &name);
                let patch = json!({
                    "sourceRanges": desired.source_ranges,
                    "targetTags": desired.target_tags,
                    "allowed": desired.allowed,
                });
                self.compute
                    .mutate("firewalls.patch", Method::PATCH, &url, Some(&patch))
                    .await
                    .map_err(|e| e.into_error(&format!("updating {what} {name}")))
            }
        };
        match result {
            Ok(()) => Ok(None),
            Err(e) if super::api_error::of(&e).is_some_and(|a| a.is_forbidden()) => {
                Ok(Some(self.firewall_command(&desired, exists, e.message)))
            }
            Err(e) => Err(e),
        }
    }

    /// The rule as it should be.
    fn desired_firewall(&self, ports: &BTreeSet<u16>) -> wire::Firewall {
        wire::Firewall {
            name: self.namer.firewall(),
            description: Record::shared(&self.config.cluster_uid, None).describe(),
            network: Some(self.network_link()),
            direction: Some("INGRESS".to_owned()),
            source_ranges: HEALTH_CHECK_RANGES.iter().map(|r| (*r).to_owned()).collect(),
            target_tags: self.config.target_tags.clone(),
            allowed: vec![wire::FirewallAllowed {
                ip_protocol: "tcp".to_owned(),
                ports: port_ranges(ports),
            }],
            ..Default::default()
        }
    }

    /// The command a network administrator runs when we may not write the rule ourselves
    /// (Shared VPC): it creates (or updates) the rule exactly as the controller would, ownership
    /// record included, so the controller recognises it afterwards.
    fn firewall_command(&self, desired: &wire::Firewall, exists: bool, reason: String) -> String {
        let project = self
            .config
            .network_project
            .as_deref()
            .unwrap_or(self.links().project());
        let allow: Vec<String> = desired
            .allowed
            .iter()
            .flat_map(|a| a.ports.iter().map(move |p| format!("{}:{p}", a.ip_protocol)))
            .collect();
        let mut command = if exists {
            format!(
                "gcloud compute firewall-rules update {} --project {project}",
                desired.name
            )
        } else {
            format!(
                "gcloud compute firewall-rules create {} --project {project} --network {} --direction INGRESS \
                 --description '{}'",
                desired.name,
                self.config.network,
                desired.description.replace('\'', "'\\''"),
            )
        };
        command.push_str(&format!(
            " --source-ranges {} --allow {}",
            desired.source_ranges.join(","),
            allow.join(",")
        ));
        if !desired.target_tags.is_empty() {
            command.push_str(&format!(" --target-tags {}", desired.target_tags.join(",")));
        }
        format!(
            "the controller may not write firewall rules ({reason}); health checks cannot reach the nodes until a \
             network administrator runs: {command}"
        )
    }
}

/// When the cluster-wide resources were last found needed, so that they go only once nothing
/// has needed them for the removal grace.
#[derive(Debug, Default)]
pub(super) struct Lingering {
    /// Ports configured but not needed, since when.
    unneeded: BTreeMap<u16, Instant>,
    /// Since when no load balancer needs anything.
    idle_since: Option<Instant>,
    /// Ports asked for as endpoint ports, or found on endpoint backends' endpoints, and not as
    /// node ports (in this process): the firewall
    /// keeps them, the instance groups do not name them.
    endpoint_only: BTreeSet<u16>,
}

/// Whether the zones' instance groups may be created, and may stay.
#[derive(Clone, Copy, Debug)]
struct Groups {
    create: bool,
    keep: bool,
}

impl Lingering {
    /// Of the firewall's `ports`, those the instance groups name: all but the endpoint ports
    /// (asked for now, or earlier and lingering) that no node port in use shares.
    fn node_ports(
        &mut self,
        ports: &BTreeSet<u16>,
        endpoint_ports: &BTreeSet<u16>,
        needed_nodes: &BTreeSet<u16>,
    ) -> BTreeSet<u16> {
        self.endpoint_only.extend(endpoint_ports.iter().copied());
        self.endpoint_only
            .retain(|p| ports.contains(p) && !needed_nodes.contains(p));
        ports
            .iter()
            .filter(|p| !self.endpoint_only.contains(p))
            .copied()
            .collect()
    }

    /// The ports to configure: the needed ones, and configured ones unneeded for less than
    /// `grace`; and when one of those may go.
    fn ports(
        &mut self,
        configured: &BTreeSet<u16>,
        needed: &BTreeSet<u16>,
        grace: Duration,
        now: Instant,
    ) -> (BTreeSet<u16>, Option<Duration>) {
        self.unneeded
            .retain(|p, _| configured.contains(p) && !needed.contains(p));
        let mut keep = needed.clone();
        let mut recheck: Option<Duration> = None;
        for port in configured.difference(needed) {
            let since = *self.unneeded.entry(*port).or_insert(now);
            let left = (since + grace).saturating_duration_since(now);
            if !left.is_zero() {
                keep.insert(*port);
                recheck = Some(recheck.map_or(left, |r| r.min(left)));
            }
        }
        (keep, recheck)
    }

    /// Whether the groups and the firewall rule may go (nothing has needed them for `grace`);
    /// otherwise, when they idle, when to look again.
    fn teardown(&mut self, idle: bool, grace: Duration, now: Instant) -> (bool, Option<Duration>) {
        if !idle {
            self.idle_since = None;
            return (false, None);
        }
        let since = *self.idle_since.get_or_insert(now);
        let left = (since + grace).saturating_duration_since(now);
        if left.is_zero() {
            (true, None)
        } else {
            (false, Some(left))
        }
    }
}

/// The TCP ports a firewall rule allows.
fn firewall_ports(rule: &wire::Firewall) -> BTreeSet<u16> {
    rule.allowed
        .iter()
        .filter(|a| a.ip_protocol.eq_ignore_ascii_case("tcp"))
        .flat_map(|a| a.ports.iter())
        .flat_map(|spec| {
            let (start, end) = spec.split_once('-').unwrap_or((spec, spec));
            match (start.trim().parse::<u16>(), end.trim().parse::<u16>()) {
                (Ok(s), Ok(e)) if s <= e => s..=e,
                #[allow(clippy::reversed_empty_ranges)]
                _ => 1..=0,
            }
        })
        .collect()
}

/// What the cloud holds that needs the cluster-wide resources.
#[derive(Debug, Default)]
struct InUse {
    /// Node ports the backend services of this cluster send traffic to.
    ports: BTreeSet<u16>,
    /// Pod ports the endpoint backends of this cluster send traffic to.
    endpoint_ports: BTreeSet<u16>,
    /// Whether any backend service or forwarding rule of this cluster exists.
    load_balancers: bool,
}

/// The node port of a named port we gave (`port30080`), if it is one.
fn port_of_name(name: &str) -> Option<u16> {
    let digits = name.strip_prefix("port")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The outcome of one zone.
#[derive(Debug, Default)]
struct Group {
    exists: bool,
    warnings: Vec<String>,
}

/// Node ports as firewall port specs, consecutive ports merged into ranges.
fn port_ranges(ports: &BTreeSet<u16>) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = ports.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end.wrapping_add(1))) && end < u16::MAX {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_node_ports_from_port_names() {
        assert_eq!(port_of_name("port30080"), Some(30080));
        assert_eq!(port_of_name(&named_port(8)), Some(8));
        for other in ["", "port", "http", "port-1", "port70000", "Port80"] {
            assert_eq!(port_of_name(other), None, "{other}");
        }
    }

    #[test]
    fn reads_firewall_port_specs() {
        let rule = wire::Firewall {
            allowed: vec![
                wire::FirewallAllowed {
                    ip_protocol: "tcp".into(),
                    ports: vec!["30080".into(), "30000-30002".into(), "x".into(), "9-1".into()],
                },
                wire::FirewallAllowed {
                    ip_protocol: "udp".into(),
                    ports: vec!["53".into()],
                },
            ],
            ..Default::default()
        };
        let ports: Vec<u16> = firewall_ports(&rule).into_iter().collect();
        assert_eq!(ports, [30000, 30001, 30002, 30080]);
    }

    #[test]
    fn unneeded_ports_and_an_idle_infrastructure_linger_for_the_grace() {
        let grace = Duration::from_secs(120);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let set = |p: &[u16]| p.iter().copied().collect::<BTreeSet<u16>>();
        let mut l = Lingering::default();
        // 30001 is configured but not needed (another writer opened it, say): kept for now.
        let (keep, recheck) = l.ports(&set(&[30000, 30001]), &set(&[30000]), grace, at(0));
        assert_eq!(keep, set(&[30000, 30001]));
        assert_eq!(recheck, Some(grace));
        let (keep, recheck) = l.ports(&set(&[30000, 30001]), &set(&[30000]), grace, at(100));
        assert_eq!(keep, set(&[30000, 30001]));
        assert_eq!(recheck, Some(Duration::from_secs(20)));
        // Needed again meanwhile: the clock starts over when it is unneeded again.
        l.ports(&set(&[30000, 30001]), &set(&[30000, 30001]), grace, at(110));
        let (keep, _) = l.ports(&set(&[30000, 30001]), &set(&[30000]), grace, at(125));
        assert_eq!(keep, set(&[30000, 30001]), "unneeded since 125 only");
        let (keep, recheck) = l.ports(&set(&[30000, 30001]), &set(&[30000]), grace, at(245));
        assert_eq!((keep, recheck), (set(&[30000]), None));

        assert_eq!(l.teardown(false, grace, at(0)), (false, None));
        assert_eq!(l.teardown(true, grace, at(10)), (false, Some(grace)));
        assert_eq!(l.teardown(false, grace, at(20)), (false, None), "needed again");
        assert_eq!(l.teardown(true, grace, at(30)), (false, Some(grace)));
        assert_eq!(l.teardown(true, grace, at(150)), (true, None));
        // Without a grace, at once.
        let mut l = Lingering::default();
        assert_eq!(l.teardown(true, Duration::ZERO, at(0)), (true, None));
        let (keep, recheck) = l.ports(&set(&[1, 2]), &set(&[1]), Duration::ZERO, at(0));
        assert_eq!((keep, recheck), (set(&[1]), None));
    }

    #[test]
    fn merges_consecutive_ports() {
        let ports: BTreeSet<u16> = [30000, 30001, 30002, 30080, 32767].into_iter().collect();
        assert_eq!(port_ranges(&ports), vec!["30000-30002", "30080", "32767"]);
        assert!(port_ranges(&BTreeSet::new()).is_empty());
    }
}

//! Replays of the fake Compute API's journal: facts about the order in which changes happened,
//! shared by the test harnesses.

use std::collections::BTreeSet;

/// The collection and name of a Compute link.
pub fn collection_and_name(link: &str) -> (String, String) {
    let mut parts = link.rsplit('/');
    let name = parts.next().unwrap_or_default().to_owned();
    let collection = parts.next().unwrap_or_default().to_owned();
    (collection, name)
}

/// A resource created or deleted, in the order the fake applied it.
pub struct Applied {
    pub seq: u64,
    pub collection: String,
    pub name: String,
    /// `true` when created, `false` when deleted.
    pub created: bool,
}

/// Every creation and deletion the fake applied, in order.
pub fn creations_and_deletions(journal: &fake_gce::Journal) -> impl Iterator<Item = Applied> + '_ {
    use fake_gce::{JournalEvent, ResourceChange};
    journal.entries.iter().filter_map(|entry| {
        let JournalEvent::Applied(applied) = &entry.event else {
            return None;
        };
        let created = match applied.change {
            ResourceChange::Created => true,
            ResourceChange::Deleted => false,
            _ => return None,
        };
        let (collection, name) = collection_and_name(&applied.target_link);
        Some(Applied {
            seq: entry.seq,
            collection,
            name,
            created,
        })
    })
}

/// Records one creation or deletion in the set of what exists.
pub fn replay(live: &mut BTreeSet<String>, change: &Applied) {
    if change.created {
        live.insert(change.name.clone());
    } else {
        live.remove(&change.name);
    }
}

/// Replays, in the order the fake applied them, every change to forwarding rules and firewall
/// rules, and fails at the first moment a forwarding rule existed while no firewall rule did
/// (after the first firewall rule was created): health checks would have been cut from a live
/// load balancer.
pub fn firewall_always_covers_forwarding_rules(journal: &fake_gce::Journal) -> Result<(), String> {
    let mut rules = BTreeSet::new();
    let mut firewalls = BTreeSet::new();
    let mut seen_firewall = false;
    for change in creations_and_deletions(journal) {
        match change.collection.as_str() {
            "forwardingRules" => replay(&mut rules, &change),
            "firewalls" => replay(&mut firewalls, &change),
            _ => continue,
        }
        seen_firewall |= !firewalls.is_empty();
        if seen_firewall && firewalls.is_empty() && !rules.is_empty() {
            return Err(format!(
                "at journal entry {} the firewall rule was gone while forwarding rules {rules:?} existed",
                change.seq
            ));
        }
    }
    Ok(())
}

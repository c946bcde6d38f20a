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

/// Replays, in the order the fake applied them, every change to forwarding rules and firewall
/// rules, and fails at the first moment a forwarding rule existed while no firewall rule did
/// (after the first firewall rule was created): health checks would have been cut from a live
/// load balancer.
pub fn firewall_always_covers_forwarding_rules(journal: &fake_gce::Journal) -> Result<(), String> {
    use fake_gce::{JournalEvent, ResourceChange};
    let mut rules = BTreeSet::new();
    let mut firewalls = BTreeSet::new();
    let mut seen_firewall = false;
    for entry in &journal.entries {
        let JournalEvent::Applied(applied) = &entry.event else {
            continue;
        };
        let (collection, name) = collection_and_name(&applied.target_link);
        let set = match collection.as_str() {
            "forwardingRules" => &mut rules,
            "firewalls" => &mut firewalls,
            _ => continue,
        };
        match applied.change {
            ResourceChange::Created => {
                set.insert(name);
            }
            ResourceChange::Deleted => {
                set.remove(&name);
            }
            _ => {}
        }
        seen_firewall |= !firewalls.is_empty();
        if seen_firewall && firewalls.is_empty() && !rules.is_empty() {
            return Err(format!(
                "at journal entry {} the firewall rule was gone while forwarding rules {rules:?} existed",
                entry.seq
            ));
        }
    }
    Ok(())
}

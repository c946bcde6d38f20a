//! `spec.rules[].host` and `spec.tls[].hosts[]`: validation and matching.

use super::syntax::dns_subdomain_error;
use cloud::model::HostMatch;
use std::net::IpAddr;

/// Parses an Ingress rule host as Kubernetes validates it: empty matches every host; otherwise a
/// lower-case RFC 1123 subdomain, optionally behind a leading `*.`; never an IP address or a port
/// (the cloud matches host names only, so either would silently never match).
pub(crate) fn parse_host(host: &str) -> Result<HostMatch, String> {
    if host.is_empty() {
        return Ok(HostMatch::Any);
    }
    let reason = host_error(host);
    match reason {
        Some(reason) => Err(format!("{host:?} is not a valid host: {reason}")),
        None => Ok(HostMatch::parse(host)),
    }
}

fn host_error(host: &str) -> Option<String> {
    if host == "*" {
        return Some("leave the host empty to match every host".to_owned());
    }
    if host.parse::<IpAddr>().is_ok()
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
    {
        return Some("it must be a DNS name, not an IP address".to_owned());
    }
    if let Some((name, _port)) = host.rsplit_once(':') {
        if name.parse::<IpAddr>().is_ok() {
            return Some("it must be a DNS name, not an IP address".to_owned());
        }
        return Some("it must not include a port".to_owned());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    if name.contains('*') {
        return Some("a wildcard must be the whole first label, as in *.example.com".to_owned());
    }
    dns_subdomain_error(name)
}

/// Whether a certificate DNS name (`example.com` or `*.example.com`) covers `host` (which may
/// itself be a wildcard), per RFC 6125: a wildcard stands for exactly one left-most label.
pub(crate) fn certificate_covers(dns_name: &str, host: &str) -> bool {
    let dns_name = dns_name.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    if dns_name == host {
        return true;
    }
    match (dns_name.strip_prefix("*."), host.strip_prefix("*.")) {
        (Some(suffix), None) => {
            matches!(host.split_once('.'), Some((label, rest)) if !label.is_empty() && rest == suffix)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage() {
        let rows = [
            ("a.example.com", "a.example.com", true),
            ("A.example.com", "a.example.com", true),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "example.com", false),
            ("*.example.com", "*.example.com", true),
            ("a.example.com", "*.example.com", false),
            ("b.example.com", "a.example.com", false),
        ];
        for (name, host, covered) in rows {
            assert_eq!(certificate_covers(name, host), covered, "{name} covers {host}");
        }
    }
}

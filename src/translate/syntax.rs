//! Small validators shared by the other steps: booleans as Kubernetes tools write them, cloud
//! resource names, DNS names, and "did you mean" suggestions for mistyped keys.

/// Parses a boolean exactly as Go's `strconv.ParseBool`, which is what ingress-gce and kubectl
/// users expect: anything else is an error, never silently `true` (ingress-gce's trap).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The accepted spellings, for messages.
pub(crate) const BOOL_HELP: &str = "use true or false";

/// Why `name` is not a valid GCE resource name (`[a-z]([-a-z0-9]{0,61}[a-z0-9])?`), if it is not.
pub(crate) fn gce_name_error(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return Some("it is empty");
    };
    if bytes.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    if !first.is_ascii_lowercase() {
        return Some("it must start with a lower-case letter");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Some("only lower-case letters, digits and '-' are allowed");
    }
    if *last == b'-' {
        return Some("it must not end with '-'");
    }
    None
}

/// Why `name` is not a lower-case RFC 1123 DNS subdomain, if it is not.
pub(crate) fn dns_subdomain_error(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_owned());
    }
    if name.len() > 253 {
        return Some("it is longer than 253 characters".to_owned());
    }
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("it must be lower case".to_owned());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some(
                "it has an empty label (two dots in a row, or a leading or trailing dot)".to_owned(),
            );
        }
        if label.len() > 63 {
            return Some(format!("its label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Some(format!(
                "it contains {c:?}; only lower-case letters, digits, '-' and '.' are allowed"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("its label {label:?} starts or ends with '-'"));
        }
    }
    None
}

/// The candidate closest to `key` if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // A third of the key's length, at least 1 and at most 3 edits: catches dropped, doubled and
    // swapped letters without matching unrelated keys.
    let budget = (key.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(key, c), *c))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance counting an adjacent transposition as one edit (optimal string
/// alignment), since swapped letters are the commonest typo.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j]; three rolling rows suffice.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Parses a decimal integer of ASCII digits only (no sign, no spaces), as annotation values
/// should be written.
pub(crate) fn parse_uint(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        let rows = [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "abd", 1),
            ("abc", "acb", 1),
            ("redirect-to-https", "redirect-to-http", 1),
            ("kitten", "sitting", 3),
            ("", "abc", 3),
        ];
        for (a, b, d) in rows {
            assert_eq!(edit_distance(a, b), d, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn nearest_keys() {
        let keys = ["ssl-policy", "redirect-to-https", "redirect-response-code"];
        assert_eq!(nearest("ssl-polcy", &keys), Some("ssl-policy"));
        assert_eq!(nearest("redirect-to-htps", &keys), Some("redirect-to-https"));
        assert_eq!(nearest("something-else", &keys), None);
    }

    #[test]
    fn gce_names() {
        for ok in ["a", "my-ip", "a1", &"a".repeat(63)] {
            assert_eq!(gce_name_error(ok), None, "{ok}");
        }
        let rows = [
            ("", "it is empty"),
            ("1a", "it must start with a lower-case letter"),
            ("My-ip", "it must start with a lower-case letter"),
            ("my_ip", "only lower-case letters, digits and '-' are allowed"),
            ("my-ip-", "it must not end with '-'"),
        ];
        for (name, reason) in rows {
            assert_eq!(gce_name_error(name), Some(reason), "{name}");
        }
        assert_eq!(
            gce_name_error(&"a".repeat(64)),
            Some("it is longer than 63 characters")
        );
    }

    #[test]
    fn bools_and_numbers() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(" true"), None);
        assert_eq!(parse_uint("30"), Some(30));
        assert_eq!(parse_uint("+30"), None);
        assert_eq!(parse_uint("3 0"), None);
        assert_eq!(parse_uint("99999999999999999999"), None);
    }
}

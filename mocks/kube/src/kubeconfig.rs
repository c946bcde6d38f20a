//! The kubeconfig that points clients at the fake.

/// Quotes a YAML scalar (JSON strings are valid YAML double-quoted scalars).
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A kubeconfig with one cluster, context and user named `name`, for a plain-HTTP `server`.
pub(crate) fn render(name: &str, server: &str) -> String {
    let name = q(name);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
    namespace: default
current-context: {name}
users:
- name: {name}
  user: {{}}
preferences: {{}}
",
        server = q(server)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_as_yaml() {
        let text = super::render("fake", "http://127.0.0.1:1234");
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["clusters"][0]["cluster"]["server"], "http://127.0.0.1:1234");
        assert_eq!(v["current-context"], "fake");
    }
}

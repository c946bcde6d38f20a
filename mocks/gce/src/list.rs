//! The list envelope and its query parameters: `maxResults` (0–500, default 500), `pageToken`,
//! `filter`, `orderBy` (`name` or `creationTimestamp desc`).

use serde_json::Value;

use crate::errors::ApiError;
use crate::filter::Filter;
use crate::json::Obj;

/// Largest page the real API returns.
const MAX_RESULTS: usize = 500;

/// One page: its items with their tags, and the token of the next page.
pub(crate) type Page<S> = (Vec<(S, Value)>, Option<String>);

/// Parsed list parameters.
#[derive(Debug)]
pub(crate) struct ListParams {
    max_results: usize,
    page_token: Option<String>,
    filter: Option<Filter>,
    newest_first: bool,
}

impl ListParams {
    /// From the query string; unknown parameters are ignored, as the real API does.
    pub(crate) fn parse(query: &[(String, String)]) -> Result<Self, ApiError> {
        let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let max_results = match get("maxResults") {
            None | Some("") | Some("0") => MAX_RESULTS,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n <= MAX_RESULTS => n,
                _ => {
                    return Err(ApiError::invalid_field(
                        "maxResults",
                        s,
                        "Must be less than or equal to 500.",
                    ));
                }
            },
        };
        let filter = match get("filter").map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(Filter::parse(f)?),
        };
        let newest_first = match get("orderBy").map(str::trim) {
            None | Some("") | Some("name") => false,
            Some("creationTimestamp desc") => true,
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "orderBy",
                    other,
                    "Sorting is only supported by 'name' or 'creationTimestamp desc'.",
                ));
            }
        };
        Ok(ListParams {
            max_results,
            page_token: get("pageToken").filter(|t| !t.is_empty()).map(str::to_string),
            filter,
            newest_first,
        })
    }

    /// Filters, orders and pages `items`, given in name order as `(name, object)`.
    pub(crate) fn page(
        &self,
        items: impl Iterator<Item = (String, Obj)>,
    ) -> Result<(Vec<Value>, Option<String>), ApiError> {
        let (page, next) = self.page_by(items, |o| ((), o))?;
        Ok((page.into_iter().map(|((), v)| v).collect(), next))
    }

    /// Filters, orders and pages `items`, given in name order as `(name, item)`; `render` makes
    /// an item's object, with a tag that comes back with it on the page. Name order pages by
    /// cursor (robust against concurrent inserts) and renders neither the items before the
    /// cursor nor those after the page; the other order pages by offset.
    pub(crate) fn page_by<N: AsRef<str>, T, S>(
        &self,
        items: impl Iterator<Item = (N, T)>,
        mut render: impl FnMut(T) -> (S, Obj),
    ) -> Result<Page<S>, ApiError> {
        let bad_token = |t: &str| ApiError::invalid_field("pageToken", t, "Invalid page token.");
        let keep = |o: &Obj| self.filter.as_ref().is_none_or(|f| f.matches(o));
        if self.newest_first {
            let offset = match &self.page_token {
                Some(t) => t
                    .strip_prefix("o")
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| bad_token(t))?,
                None => 0,
            };
            let mut all: Vec<(S, Obj)> = items
                .map(|(_, item)| render(item))
                .filter(|(_, o)| keep(o))
                .collect();
            all.sort_by(|(_, a), (_, b)| {
                let ts = |o: &Obj| {
                    o.get("creationTimestamp")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                ts(b).cmp(&ts(a))
            });
            let end = (offset + self.max_results).min(all.len());
            let next = (end < all.len()).then(|| format!("o{end}"));
            let page = all
                .into_iter()
                .skip(offset)
                .take(self.max_results)
                .map(|(tag, o)| (tag, Value::Object(o)))
                .collect();
            return Ok((page, next));
        }
        let after = match &self.page_token {
            Some(t) => Some(t.strip_prefix("n").and_then(unhex).ok_or_else(|| bad_token(t))?),
            None => None,
        };
        let mut page = Vec::new();
        let mut last = String::new();
        let mut more = false;
        for (name, item) in items {
            let name = name.as_ref();
            if after.as_ref().is_some_and(|a| name <= a.as_str()) {
                continue;
            }
            if page.len() == self.max_results && self.filter.is_none() {
                more = true;
                break;
            }
            let (tag, obj) = render(item);
            if !keep(&obj) {
                continue;
            }
            if page.len() == self.max_results {
                more = true;
                break;
            }
            last = name.to_string();
            page.push((tag, Value::Object(obj)));
        }
        let next = (more && !page.is_empty()).then(|| format!("n{}", hex(&last)));
        Ok((page, next))
    }
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// `{kind, id, items, nextPageToken, selfLink}`; `items` is omitted when empty.
pub(crate) fn envelope(
    kind: &str,
    id: &str,
    self_link: &str,
    items: Vec<Value>,
    next: Option<String>,
) -> Obj {
    let mut o = Obj::new();
    o.insert("kind".into(), kind.into());
    o.insert("id".into(), id.into());
    if !items.is_empty() {
        o.insert("items".into(), Value::Array(items));
    }
    if let Some(t) = next {
        o.insert("nextPageToken".into(), t.into());
    }
    o.insert("selfLink".into(), self_link.into());
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn items(n: usize) -> Vec<(String, Obj)> {
        (0..n)
            .map(|i| {
                let name = format!("r{i:03}");
                let o = json!({"name": name, "creationTimestamp": format!("2024-01-01T00:00:{:02}.000+00:00", i % 60)});
                (name, o.as_object().cloned().unwrap_or_default())
            })
            .collect()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn pages_by_cursor_cover_everything_once() {
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut query = q(&[("maxResults", "7")]);
            if let Some(t) = &token {
                query.push(("pageToken".into(), t.clone()));
            }
            let p = ListParams::parse(&query).map_err(|e| e.message);
            let (page, next) = p
                .and_then(|p| p.page(items(20).into_iter()).map_err(|e| e.message))
                .unwrap_or_default();
            seen.extend(page.iter().filter_map(|v| v["name"].as_str().map(str::to_string)));
            token = next;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 20);
        assert_eq!(seen.first().map(String::as_str), Some("r000"));
    }

    #[test]
    fn bad_parameters_are_400() {
        for query in [
            q(&[("maxResults", "501")]),
            q(&[("orderBy", "description")]),
            q(&[("filter", "name eq (")]),
        ] {
            assert_eq!(
                ListParams::parse(&query).map(|_| ()).map_err(|e| e.status),
                Err(400)
            );
        }
        let p = ListParams::parse(&q(&[("pageToken", "zzz")]));
        let r = p.and_then(|p| p.page(items(1).into_iter()));
        assert_eq!(r.map(|_| ()).map_err(|e| e.status), Err(400));
    }

    #[test]
    fn newest_first_orders_by_creation_time() {
        let p = ListParams::parse(&q(&[("orderBy", "creationTimestamp desc"), ("maxResults", "2")]));
        let (page, next) = p.and_then(|p| p.page(items(5).into_iter())).unwrap_or_default();
        assert_eq!(page[0]["name"], "r004");
        assert_eq!(next.as_deref(), Some("o2"));
    }
}
